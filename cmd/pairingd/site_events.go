package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/pairingd/pairingd/api/sitehook"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// validateEvents checks the site.webhook_* and site.events_retention keys.
func (s SiteConfig) validateEvents() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...)))
	}
	if s.WebhookURL != "" {
		if u, err := url.Parse(s.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("site.webhook_url", "must be an absolute http(s) URL")
		}
		if s.WebhookSecret == "" {
			bad("site.webhook_secret", "is required when site.webhook_url is set (or PAIRINGD_SITE_WEBHOOK_SECRET_FILE)")
		}
	}
	if s.WebhookSecret != "" && len(s.WebhookSecret) < 16 {
		bad("site.webhook_secret", "must be at least 16 bytes")
	}
	for key, d := range map[string]time.Duration{
		"site.webhook_timeout": s.WebhookTimeout, "site.webhook_retry_for": s.WebhookRetryFor,
		"site.webhook_backoff_min": s.WebhookBackoffMin, "site.webhook_backoff_max": s.WebhookBackoffMax,
		"site.webhook_poll_interval": s.WebhookPollInterval, "site.events_retention": s.EventsRetention,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration")
		}
	}
	if s.WebhookBackoffMin > s.WebhookBackoffMax {
		bad("site.webhook_backoff_min", "must not be above site.webhook_backoff_max")
	}
	if s.EventsRetention <= s.WebhookRetryFor {
		bad("site.events_retention", "must be longer than site.webhook_retry_for, or undelivered events would be deleted while still retried")
	}
	if s.WebhookWorkers < 1 || s.WebhookWorkers > 64 {
		bad("site.webhook_workers", "must be 1..64")
	}
	return errs
}

// siteEventsJob is the background job that sends site events to the
// webhook; nil when site.webhook_url is not set (events are then only
// polled with GET /v1/events).
func siteEventsJob(cfg SiteConfig, st *store.Store, log *slog.Logger, obs pairing.Observer) (func(context.Context) error, error) {
	if cfg.WebhookURL == "" {
		return nil, nil
	}
	client, err := sitehook.New(cfg.WebhookURL, []byte(cfg.WebhookSecret), cfg.WebhookTimeout)
	if err != nil {
		return nil, errors.New("site events: " + err.Error())
	}
	d := pairing.NewDispatcher(st, client, pairing.DispatcherConfig{
		Policy:       pairing.RetryPolicy{Initial: cfg.WebhookBackoffMin, Max: cfg.WebhookBackoffMax, RetryFor: cfg.WebhookRetryFor},
		Lease:        pairing.LeaseFor(cfg.WebhookTimeout),
		Workers:      cfg.WebhookWorkers,
		PollInterval: cfg.WebhookPollInterval,
		Logger:       log.With("job", "site_events"),
	})
	d.Observe(obs)
	log.Info("site events webhook on", "retry_for", cfg.WebhookRetryFor) // never the URL: it may hold a credential
	return d.Run, nil
}
