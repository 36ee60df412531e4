package pairing

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// JobsConfig is the job engine's configuration (yaml section jobs): what
// the three durable queues share, then what each needs of its own. The
// workers' configurations (InboundWorkerConfig, SiteEventWorkerConfig,
// NotificationWorkerConfig) are derived from it, so a setting shared by
// the queues is written once.
type JobsConfig struct {
	// PollInterval is how often an idle queue looks for rows written by
	// other instances and retries coming due (this instance's own writes
	// wake it at once).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Workers is how many jobs of each queue run at once in this instance.
	Workers int `yaml:"workers"`
	// SendTimeout bounds one send of a site event or a notification; a
	// claim's lease is derived from it (LeaseFor).
	SendTimeout time.Duration `yaml:"send_timeout"`
	// BackoffMin, BackoffMax and MaxAge are the one retry policy of site
	// events and notifications: BackoffMin doubled per failed try, capped
	// at BackoffMax, with jitter, until the job is MaxAge old. A site
	// event's last try is at that age; a notification is never sent after
	// it (a message a day late is worse than none).
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	MaxAge     time.Duration `yaml:"max_age"`

	SiteEvents SiteEventJobs `yaml:"site_events"`
	Notify     NotifyJobs    `yaml:"notify"`
}

// SiteEventJobs is the queue of events to the site's webhook.
type SiteEventJobs struct {
	// Retention: events older than this are deleted, delivered or not;
	// GET /v1/events lists them until then.
	Retention time.Duration `yaml:"retention"`
}

// NotifyJobs is the queue of notification deliveries.
type NotifyJobs struct {
	// BatchSize is the most deliveries claimed at once.
	BatchSize int `yaml:"batch_size"`
	// MaxAttempts: a delivery fails for good after this many tries (or
	// at JobsConfig.MaxAge).
	MaxAttempts int `yaml:"max_attempts"`
}

// InboundMaxAge is how long after it arrived a platform event is still
// tried: a chat answer an hour late is useless.
const InboundMaxAge = time.Hour

// InboundRetention is how long handled inbound events are kept, which is
// how long a platform's redelivery is recognized: Meta redelivers for up to
// 36 hours.
const InboundRetention = 48 * time.Hour

// DefaultJobsConfig returns the documented defaults.
func DefaultJobsConfig() JobsConfig {
	return JobsConfig{
		PollInterval: time.Second,
		Workers:      8,
		SendTimeout:  10 * time.Second,
		BackoffMin:   5 * time.Second,
		BackoffMax:   time.Hour,
		MaxAge:       24 * time.Hour,
		SiteEvents:   SiteEventJobs{Retention: 30 * 24 * time.Hour},
		Notify:       NotifyJobs{BatchSize: 100, MaxAttempts: 10},
	}
}

// Validate checks the configuration; each error names its key.
func (c JobsConfig) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute {
		bad("poll_interval", "must be between 10ms and 1m")
	}
	if c.Workers < 1 || c.Workers > 256 {
		bad("workers", "must be between 1 and 256")
	}
	if c.BackoffMin <= 0 {
		bad("backoff_min", "must be a positive duration")
	}
	if c.BackoffMax < c.BackoffMin {
		bad("backoff_max", "must not be below backoff_min")
	}
	if c.MaxAge <= 0 {
		bad("max_age", "must be a positive duration")
	}
	if c.SiteEvents.Retention <= c.MaxAge {
		bad("site_events.retention", "must be longer than max_age, or undelivered events would be deleted while still retried")
	}
	if c.SendTimeout <= 0 {
		bad("send_timeout", "must be a positive duration")
	}
	if c.Notify.BatchSize < 1 {
		bad("notify.batch_size", "must be at least 1")
	}
	if c.Notify.MaxAttempts < 1 {
		bad("notify.max_attempts", "must be at least 1")
	}
	return errors.Join(errs...)
}

// InboundWorkerConfig is the inbound queue's runtime configuration.
func (c JobsConfig) InboundWorkerConfig(log *slog.Logger) InboundWorkerConfig {
	return InboundWorkerConfig{MaxAge: InboundMaxAge, Workers: c.Workers, PollInterval: c.PollInterval, Logger: log}
}

// SiteEventWorkerConfig is the site events queue's runtime configuration.
func (c JobsConfig) SiteEventWorkerConfig(log *slog.Logger) SiteEventWorkerConfig {
	return SiteEventWorkerConfig{
		Policy:       RetryPolicy{Initial: c.BackoffMin, Max: c.BackoffMax, RetryFor: c.MaxAge},
		Lease:        LeaseFor(c.SendTimeout),
		Workers:      c.Workers,
		PollInterval: c.PollInterval,
		Logger:       log,
	}
}

// NotificationWorkerConfig is the notification queue's runtime configuration.
func (c JobsConfig) NotificationWorkerConfig() NotificationWorkerConfig {
	return NotificationWorkerConfig{
		PollInterval: c.PollInterval, BatchSize: c.Notify.BatchSize,
		Lease: LeaseFor(c.SendTimeout), SendTimeout: c.SendTimeout,
		Parallel: c.Workers, MaxAttempts: c.Notify.MaxAttempts, MaxAge: c.MaxAge,
		BackoffMin: c.BackoffMin, BackoffMax: c.BackoffMax,
	}
}
