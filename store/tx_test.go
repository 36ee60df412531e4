package store_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// A write transaction that has begun runs to its commit even when its
// caller leaves (a client hang-up cancels the request's context).
func TestTxFinishesWhenItsCallerLeaves(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		cctx, cancel := context.WithCancel(ctx)
		err := st.Tx(cctx, func(r pairing.Repo) error {
			cancel()
			return r.AddAudit(cctx, pairing.AuditEvent{At: t0, Action: "authorize", Outcome: "match"})
		})
		if err != nil {
			t.Fatalf("a transaction whose caller left: %v", err)
		}
		evs, err := st.AuditEvents(ctx, 10)
		if err != nil || len(evs) != 1 || evs[0].Outcome != "match" {
			t.Fatalf("its write: %+v %v", evs, err)
		}
		// Waiting for a transaction still ends with the caller.
		if err := st.Tx(cctx, func(pairing.Repo) error { return nil }); err == nil {
			t.Fatal("a transaction began for a caller that had left")
		}
	})
}

// On PostgreSQL a cancelled statement costs its connection (the driver
// closes it); a transaction whose caller leaves keeps it.
func TestPostgresTxKeepsItsConnectionWhenItsCallerLeaves(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	app := "txkeep_" + strings.ReplaceAll(t.Name(), "/", "_")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn + sep + "application_name=" + app, MaxOpenConns: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", os.Getenv(storetest.EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	backend := func() int {
		t.Helper()
		var pid int
		if err := admin.QueryRowContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&pid); err != nil {
			t.Fatalf("the store's one backend: %v", err)
		}
		return pid
	}
	before := backend()
	for range 5 {
		cctx, cancel := context.WithCancel(ctx)
		err := st.Tx(cctx, func(r pairing.Repo) error {
			cancel()
			return r.AddAudit(cctx, pairing.AuditEvent{At: t0, Action: "authorize"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if after := backend(); after != before {
		t.Fatalf("the connection was replaced: backend %d, then %d", before, after)
	}
}
