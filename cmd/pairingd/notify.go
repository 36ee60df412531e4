package main

import (
	"fmt"
	"time"

	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/pairing"
)

// NotifyConfig is the notifications outbox worker (POST
// /v1/users/{user_id}/messages): how it claims, paces and retries.
type NotifyConfig struct {
	PollInterval             time.Duration `yaml:"poll_interval"`
	BatchSize                int           `yaml:"batch_size"`
	Lease                    time.Duration `yaml:"lease"`
	SendTimeout              time.Duration `yaml:"send_timeout"`
	Parallel                 int           `yaml:"parallel"`
	MaxAttempts              int           `yaml:"max_attempts"`
	MaxAge                   time.Duration `yaml:"max_age"`
	BackoffMin               time.Duration `yaml:"backoff_min"`
	BackoffMax               time.Duration `yaml:"backoff_max"`
	TelegramRatePerSecond    float64       `yaml:"telegram_rate_per_second"`
	TelegramPerChatInterval  time.Duration `yaml:"telegram_per_chat_interval"`
	MessengerRatePerSecond   float64       `yaml:"messenger_rate_per_second"`
	MessengerPerChatInterval time.Duration `yaml:"messenger_per_chat_interval"`
}

func defaultNotifyConfig() NotifyConfig {
	w := pairing.DefaultWorkerConfig()
	return NotifyConfig{
		PollInterval: w.PollInterval, BatchSize: w.BatchSize, Lease: w.Lease, SendTimeout: w.SendTimeout,
		Parallel: w.Parallel, MaxAttempts: w.MaxAttempts, MaxAge: w.MaxAge, BackoffMin: w.BackoffMin, BackoffMax: w.BackoffMax,
		TelegramRatePerSecond: telegram.DefaultRatePerSecond, TelegramPerChatInterval: telegram.DefaultPerChatInterval,
		MessengerRatePerSecond: messenger.DefaultRatePerSecond, MessengerPerChatInterval: messenger.DefaultPerChatInterval,
	}
}

func (n NotifyConfig) validate() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: notify.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	for key, d := range map[string]time.Duration{
		"poll_interval": n.PollInterval, "lease": n.Lease, "send_timeout": n.SendTimeout, "max_age": n.MaxAge,
		"backoff_min": n.BackoffMin, "backoff_max": n.BackoffMax,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration")
		}
	}
	for key, d := range map[string]time.Duration{
		"telegram_per_chat_interval": n.TelegramPerChatInterval, "messenger_per_chat_interval": n.MessengerPerChatInterval,
	} {
		if d < 0 {
			bad(key, "must not be negative")
		}
	}
	for key, v := range map[string]int{"batch_size": n.BatchSize, "parallel": n.Parallel, "max_attempts": n.MaxAttempts} {
		if v < 1 {
			bad(key, "must be at least 1")
		}
	}
	for key, v := range map[string]float64{"telegram_rate_per_second": n.TelegramRatePerSecond, "messenger_rate_per_second": n.MessengerRatePerSecond} {
		if v <= 0 {
			bad(key, "must be positive")
		}
	}
	if n.BackoffMax < n.BackoffMin {
		bad("backoff_max", "must not be below backoff_min")
	}
	if n.SendTimeout > 0 && n.Lease < 2*n.SendTimeout {
		bad("lease", "must be at least twice send_timeout, so a claimed message is sent within its lease")
	}
	return errs
}

func (n NotifyConfig) telegramPace() pairing.Pace {
	return pairing.Pace{RatePerSecond: n.TelegramRatePerSecond, PerChatInterval: n.TelegramPerChatInterval}
}

func (n NotifyConfig) messengerPace() pairing.Pace {
	return pairing.Pace{RatePerSecond: n.MessengerRatePerSecond, PerChatInterval: n.MessengerPerChatInterval}
}

// notifyWorker builds the outbox worker that serve runs in the background.
func notifyWorker(cfg Config, svc *pairing.Service) (*pairing.Worker, error) {
	n := cfg.Notify
	return svc.NewWorker(pairing.WorkerConfig{
		PollInterval: n.PollInterval, BatchSize: n.BatchSize, Lease: n.Lease, SendTimeout: n.SendTimeout,
		Parallel: n.Parallel, MaxAttempts: n.MaxAttempts, MaxAge: n.MaxAge, BackoffMin: n.BackoffMin, BackoffMax: n.BackoffMax,
	})
}
