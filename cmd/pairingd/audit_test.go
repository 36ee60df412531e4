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

func TestAuditConfig(t *testing.T) {
	cfg, err := loadTestConfig("", env(nil))
	if err != nil || cfg.Audit.Retention != 90*24*time.Hour {
		t.Fatalf("default %v %v", cfg.Audit.Retention, err)
	}
	cfg, err = loadTestConfig("", env(map[string]string{"PAIRINGD_AUDIT_RETENTION": "720h"}))
	if err != nil || cfg.Audit.Retention != 720*time.Hour {
		t.Fatalf("env override %v %v", cfg.Audit.Retention, err)
	}
	cfg, err = loadTestConfig("", env(map[string]string{"PAIRINGD_AUDIT_RETENTION": "0"}))
	if err != nil || cfg.Audit.Retention != 0 {
		t.Fatalf("0 (keep forever) %v %v", cfg.Audit.Retention, err)
	}
	if auditPruneLoop(nil, nil, 0) != nil {
		t.Fatal("retention 0 still prunes")
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("audit:\n  retention: 0s\n"), 0o600)
	if cfg, err := loadTestConfig(file, env(nil)); err != nil || cfg.Audit.Retention != 0 {
		t.Fatalf("file 0s %v %v", cfg.Audit.Retention, err)
	}
	for _, c := range []struct{ file, env string }{{"", "-1h"}, {"audit:\n  retention: -24h\n", ""}} {
		path := ""
		if c.file != "" {
			path = file
			os.WriteFile(path, []byte(c.file), 0o600)
		}
		_, err := loadTestConfig(path, env(map[string]string{"PAIRINGD_AUDIT_RETENTION": c.env}))
		if err == nil || !strings.Contains(err.Error(), "audit.retention: must not be negative") {
			t.Fatalf("negative retention %+v: %v", c, err)
		}
	}
}

func TestAuditPruneLoopDropsOldRows(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.SQLite(t)
	now := time.Now().UTC()
	for i, at := range []time.Time{now.Add(-91 * 24 * time.Hour), now.Add(-89 * 24 * time.Hour)} {
		if err := st.AddAudit(ctx, pairing.AuditEvent{At: at, Action: "authorize", Outcome: []string{"old", "recent"}[i]}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- auditPruneLoop(st, slog.New(slog.DiscardHandler), 90*24*time.Hour)(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := st.AuditEvents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].Outcome == "recent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not pruned: %+v", evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("auditPruneLoop returned %v", err)
	}
}
