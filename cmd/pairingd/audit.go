package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/pairingd/pairingd/store"
)

// AuditConfig is the audit trail (audit_events: every authorize attempt
// and link change, ids and outcomes, never a secret).
type AuditConfig struct {
	// Retention: rows older than this are deleted by an hourly prune;
	// 0 keeps them forever.
	Retention time.Duration `yaml:"retention"`
}

func defaultAudit() AuditConfig { return AuditConfig{Retention: 90 * 24 * time.Hour} }

// Validate checks the audit.* keys.
func (c AuditConfig) Validate() error {
	if c.Retention < 0 {
		return errors.New("retention: must not be negative (0 keeps the audit trail forever)")
	}
	return nil
}

// auditPruneLoop deletes audit rows older than the retention, hourly, in
// batches (store.AuditPruneBatch rows per statement), so a first prune of a
// large backlog does not hold the SQLite writer for long. nil when the
// retention is 0 (keep forever).
func auditPruneLoop(st *store.Store, log *slog.Logger, retention time.Duration) func(context.Context) error {
	if retention <= 0 {
		return nil
	}
	return every(time.Hour, func(ctx context.Context) {
		n, err := st.PruneAudit(ctx, time.Now().Add(-retention), store.AuditPruneBatch)
		logPrune(ctx, log, slog.LevelInfo, "audit events past audit.retention", n, err)
	})
}
