package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// siteEventsJob is the background job that sends site events to the
// webhook; nil when site.webhook_url is not set (events are then only
// polled with GET /v1/events).
func siteEventsJob(cfg Config, st *store.Store, log *slog.Logger, obs pairing.Observer) (func(context.Context) error, error) {
	client, err := cfg.Site.Client(cfg.Jobs.SendTimeout)
	if err != nil {
		return nil, errors.New("site events: " + err.Error())
	}
	if client == nil {
		return nil, nil
	}
	d := pairing.NewSiteEventWorker(st, client, cfg.Jobs.SiteEventWorkerConfig(log.With("job", "site_events")))
	d.Observe(obs)
	log.Info("site events webhook on", "max_age", cfg.Jobs.MaxAge) // never the URL: it may hold a credential
	return d.Run, nil
}
