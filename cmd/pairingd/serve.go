package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// spentRetention: grants and deep-link tokens are deleted this long after
// they expired (they can never be spent again; the audit trail keeps what
// happened). messageRetention: a notification whose deliveries have all
// finished can be read with GET /v1/messages/{id} for this long.
const (
	spentRetention   = 7 * 24 * time.Hour
	messageRetention = 30 * 24 * time.Hour
)

// serve runs the service until ctx is cancelled (SIGINT/SIGTERM), then
// shuts down in order: stop accepting requests, stop the channels and
// workers, close the database.
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics := api.NewMetrics()
	svc, err := newService(ctx, cfg, st, log, pairing.WithObserver(metrics))
	if err != nil {
		return err
	}
	texts, err := templates.Load(cfg.Templates.Dir, cfg.Templates.FallbackLocale)
	if err != nil {
		return err
	}
	svc.EnableLinkNotices(noticeTexts{texts})

	deps := api.Deps{
		Service: svc,
		Log:     log,
		Queues:  st,
		Metrics: metrics,
		Build:   buildInfo().forMetrics(),
	}
	inbox := inboundWorker(cfg, st, log, svc.Config().Secret)
	inbox.Observe(metrics)
	if n, err := inbox.SealStored(ctx); err != nil {
		return fmt.Errorf("seal the tokens of stored inbound events: %w", err)
	} else if n > 0 {
		log.Info("sealed the tokens an earlier release stored in the clear in inbound events", "events", n)
	}
	env := channelEnv{cfg: cfg, svc: svc, st: st, texts: texts, log: log, inbox: inbox, obs: metrics}
	chans, err := buildChannels(env, &deps)
	if err != nil {
		return err
	}
	if err := mountSignIn(ctx, env, &deps); err != nil {
		return err
	}
	sendEvents, err := siteEventsJob(cfg, st, log, metrics)
	if err != nil {
		return err
	}
	worker, err := svc.NewNotificationWorker(cfg.Jobs.NotificationWorkerConfig())
	if err != nil {
		return err
	}

	handlers, err := api.NewHandlers(cfg.Server, deps)
	if err != nil {
		return err
	}
	srv := api.NewHTTPServer(cfg.Server, handlers.API)
	ln, err := api.Listen(cfg.Server, srv)
	if err != nil {
		return err
	}
	servers := []*http.Server{srv}
	serveErr := make(chan error, 2)
	if handlers.Metrics != nil {
		mcfg := cfg.Server
		mcfg.Listen = cfg.Server.MetricsListen
		msrv := api.NewHTTPServer(mcfg, handlers.Metrics)
		mln, err := api.Listen(mcfg, msrv)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server.metrics_listen: %w", err)
		}
		servers = append(servers, msrv)
		log.Info("metrics listening", "addr", mln.Addr().String())
		go func() { serveErr <- msrv.Serve(mln) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", versionString(), "database", st.Driver(), "channels", len(cfg.Channels))
	go func() { serveErr <- srv.Serve(ln) }()

	// Channels and background jobs get their own context so they stop only
	// after the HTTP server stopped taking requests.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	jobs := append(chans, pruneLoop(st, log, cfg.Jobs.SiteEvents.Retention))
	jobs = append(jobs, inbox.Run, inboundPruneLoop(st, log), worker.Run)
	if sendEvents != nil {
		jobs = append(jobs, sendEvents)
	}
	if pruneAudit := auditPruneLoop(st, log, cfg.Audit.Retention); pruneAudit != nil {
		jobs = append(jobs, pruneAudit)
	}
	if cfg.OIDC.Enabled {
		jobs = append(jobs, signInPruneLoop(st, log, cfg.OIDC))
	}
	for _, run := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(bg); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background job stopped", "err", err)
			}
		}()
	}

	var result error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			result = fmt.Errorf("http server: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("http shutdown incomplete", "addr", srv.Addr, "err", err)
		}
	}
	stopBG()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		log.Warn("channels did not stop within the shutdown timeout")
	}
	log.Info("stopped")
	return result
}

// pruneLoop drops site events older than eventRetention, and spent grants, link tokens and
// finished notifications, hourly.
func pruneLoop(st *store.Store, log *slog.Logger, eventRetention time.Duration) func(context.Context) error {
	return every(time.Hour, func(ctx context.Context) {
		n, err := st.PruneSiteEvents(ctx, time.Now().Add(-eventRetention))
		logPrune(ctx, log, slog.LevelInfo, "site events past jobs.site_events.retention", n, err)
		now := time.Now()
		n, err = st.PruneSpent(ctx, now.Add(-spentRetention), now.Add(-messageRetention))
		logPrune(ctx, log, slog.LevelDebug, "expired grants, deep-link tokens and finished notifications", n, err)
	})
}

// every runs fn at once and then every d, until ctx ends.
func every(d time.Duration, fn func(context.Context)) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			fn(ctx)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// logPrune reports one prune: a failure as a warning (not when it failed
// because the service is stopping), rows removed at level.
func logPrune(ctx context.Context, log *slog.Logger, level slog.Level, what string, n int64, err error) {
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("prune "+what, "err", err, "rows", n)
	case err == nil && n > 0:
		log.Log(ctx, level, "pruned "+what, "rows", n)
	}
}
