package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store/storetest"
)

func TestSiteEventConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hook_secret")
	os.WriteFile(secretFile, []byte("0123456789abcdef-from-file\n"), 0o600)
	cfg, err := loadTestConfig("", env(map[string]string{
		"PAIRINGD_SITE_WEBHOOK_URL":           "https://shop.example/hooks/pairingd",
		"PAIRINGD_SITE_WEBHOOK_SECRET_FILE":   secretFile,
		"PAIRINGD_JOBS_MAX_AGE":               "48h",
		"PAIRINGD_JOBS_SITE_EVENTS_RETENTION": "1000h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Site
	if s.WebhookSecret != "0123456789abcdef-from-file" || cfg.Jobs.MaxAge != 48*time.Hour || cfg.Jobs.SendTimeout != 10*time.Second ||
		cfg.Jobs.Workers != 8 || cfg.Jobs.SiteEvents.Retention != 1000*time.Hour {
		t.Fatalf("%+v %+v", s, cfg.Jobs)
	}
	if d := cfg.Jobs.SiteEventWorkerConfig(nil); d.Lease != 60*time.Second || d.Policy.RetryFor != 48*time.Hour || d.Workers != 8 {
		t.Fatalf("site event worker %+v", d)
	}
	if job, err := siteEventsJob(cfg, nil, slog.New(slog.DiscardHandler), pairing.NopObserver{}); err != nil || job == nil {
		t.Fatalf("job %v %v", job != nil, err)
	}
	if job, err := siteEventsJob(defaultConfig(), nil, slog.New(slog.DiscardHandler), pairing.NopObserver{}); err != nil || job != nil {
		t.Fatalf("no URL: job %v %v", job != nil, err)
	}

	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PAIRINGD_SITE_WEBHOOK_URL": "https://shop.example/h"}, "site.webhook_secret: is required"},
		{map[string]string{"PAIRINGD_SITE_WEBHOOK_URL": "shop.example/h", "PAIRINGD_SITE_WEBHOOK_SECRET": "0123456789abcdef"}, "site.webhook_url: must be an absolute http(s) URL"},
		{map[string]string{"PAIRINGD_SITE_WEBHOOK_URL": "ftp://shop.example/h", "PAIRINGD_SITE_WEBHOOK_SECRET": "0123456789abcdef"}, "site.webhook_url"},
		{map[string]string{"PAIRINGD_SITE_WEBHOOK_URL": "https://shop.example/h", "PAIRINGD_SITE_WEBHOOK_SECRET": "short"}, "site.webhook_secret: must be at least 16 bytes"},
		{map[string]string{"PAIRINGD_JOBS_SEND_TIMEOUT": "0s"}, "jobs.send_timeout: must be a positive duration"},
		{map[string]string{"PAIRINGD_JOBS_BACKOFF_MIN": "2h"}, "jobs.backoff_max: must not be below backoff_min"},
		{map[string]string{"PAIRINGD_JOBS_SITE_EVENTS_RETENTION": "12h"}, "jobs.site_events.retention: must be longer than max_age"},
		{map[string]string{"PAIRINGD_JOBS_WORKERS": "0"}, "jobs.workers"},
	} {
		_, err := loadTestConfig("", env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.env, err, c.want)
		}
		if err != nil && c.env["PAIRINGD_SITE_WEBHOOK_SECRET"] != "" && strings.Contains(err.Error(), c.env["PAIRINGD_SITE_WEBHOOK_SECRET"]) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestPruneLoopDropsOldSiteEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.SQLite(t)
	now := time.Now().UTC()
	for _, at := range []time.Time{now.Add(-31 * 24 * time.Hour), now.Add(-29 * 24 * time.Hour)} {
		if err := st.AddSiteEvent(ctx, pairing.SiteEvent{Type: pairing.EventLinkCreated, UserID: "u", Payload: []byte("{}"), CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- pruneLoop(st, slog.New(slog.DiscardHandler), 30*24*time.Hour)(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := st.SiteEventsAfter(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].ID == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not pruned: %d events left", len(evs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("pruneLoop returned %v", err)
	}
}
