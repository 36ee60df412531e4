package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// InboundConfig is the inbound queue of platform webhooks (Messenger,
// Telegram in webhook mode): the webhook stores events and answers 200,
// a worker handles them.
type InboundConfig struct {
	// MaxAge: an event not handled this long after it arrived is given up
	// (a chat answer an hour late is useless).
	MaxAge time.Duration `yaml:"max_age"`
	// Workers: events handled at once by this instance.
	Workers int `yaml:"workers"`
	// PollInterval: how often the queue is checked for events stored by
	// other instances and retries coming due.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Retention: how long handled events are kept, which is how long a
	// platform's redelivery is recognized (Meta retries for up to 36 h).
	Retention time.Duration `yaml:"retention"`
}

// minInboundRetention covers Meta's 36 hours of redeliveries.
const minInboundRetention = 36 * time.Hour

func defaultInbound() InboundConfig {
	return InboundConfig{MaxAge: time.Hour, Workers: 8, PollInterval: time.Second, Retention: 48 * time.Hour}
}

// validate checks the inbound.* keys.
func (c InboundConfig) validate() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.MaxAge < time.Minute || c.MaxAge > 36*time.Hour {
		bad("inbound.max_age", "must be between 1m and 36h")
	}
	if c.Workers < 1 || c.Workers > 256 {
		bad("inbound.workers", "must be between 1 and 256")
	}
	if c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute {
		bad("inbound.poll_interval", "must be between 10ms and 1m")
	}
	if c.Retention < minInboundRetention {
		bad("inbound.retention", "must be at least 36h (Meta redelivers for up to 36 hours)")
	} else if c.Retention < c.MaxAge {
		bad("inbound.retention", "must be at least inbound.max_age")
	}
	return errs
}

// inboundWorker builds the process's inbound worker over the store.
func inboundWorker(cfg InboundConfig, st *store.Store, log *slog.Logger) *pairing.InboundWorker {
	return pairing.NewInboundWorker(st, pairing.InboundConfig{
		MaxAge: cfg.MaxAge, Workers: cfg.Workers, PollInterval: cfg.PollInterval,
		Logger: log.With("component", "inbound"),
	})
}

// inboundPruneLoop drops handled and given-up inbound events older than
// the retention, hourly.
func inboundPruneLoop(st *store.Store, log *slog.Logger, retention time.Duration) func(context.Context) error {
	return hourly(func(ctx context.Context) {
		n, err := st.PruneInbound(ctx, time.Now().Add(-retention))
		logPrune(ctx, log, slog.LevelDebug, "inbound events", n, err)
	})
}
