package pairing_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// env is one pairing.Service on a real, migrated store (SQLite in a temp
// file unless a test asks for PostgreSQL) behind a fault-injecting wrapper,
// with a clock the test steps.
type env struct {
	t     *testing.T
	svc   *pairing.Service
	store *faultStore
	clock *pairingtest.Clock
	ctx   context.Context
}

// newEnvFunc builds an env; the engine helpers below hand one to a test.
type newEnvFunc = func(t *testing.T, mod ...func(*pairing.Config)) *env

// newEnv builds an env on SQLite.
func newEnv(t *testing.T, mod ...func(*pairing.Config)) *env {
	t.Helper()
	return newEnvOn(t, openSQLite(t), mod...)
}

func newEnvPostgres(t *testing.T, mod ...func(*pairing.Config)) *env {
	t.Helper()
	return newEnvOn(t, openPostgres(t), mod...)
}

// engines runs fn on SQLite and on PostgreSQL (skipped unless
// PAIRING_TEST_POSTGRES_DSN names a database).
func engines(t *testing.T, fn func(t *testing.T, newEnv newEnvFunc)) {
	t.Run(store.SQLite, func(t *testing.T) { fn(t, newEnv) })
	t.Run(store.Postgres, func(t *testing.T) { fn(t, newEnvPostgres) })
}

// bothBudgetModes runs fn with each way the key failure budget is kept
// (see pairing/keybudget.go): decided inside the transaction (SQLite, whose
// writes are serialized), reserved up front and refunded (the PostgreSQL
// rule, run on SQLite by hiding that its writes are serialized), and on
// PostgreSQL itself.
func bothBudgetModes(t *testing.T, fn func(t *testing.T, newEnv newEnvFunc)) {
	t.Run("in-tx", func(t *testing.T) { fn(t, newEnv) })
	t.Run("reserve", func(t *testing.T) {
		fn(t, func(t *testing.T, mod ...func(*pairing.Config)) *env {
			t.Helper()
			st := openSQLite(t)
			st.serial = false
			return newEnvOn(t, st, mod...)
		})
	})
	t.Run(store.Postgres, func(t *testing.T) { fn(t, newEnvPostgres) })
}

func newEnvOn(t *testing.T, st *faultStore, mod ...func(*pairing.Config)) *env {
	t.Helper()
	cfg := pairing.Config{Secret: []byte(strings.Repeat("s", 32)), LinkURL: "https://site.example/pair?buid={buid}"}
	for _, m := range mod {
		m(&cfg)
	}
	clk := pairingtest.NewClock(t0)
	svc, err := pairing.New(st, cfg, pairing.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, svc: svc, store: st, clock: clk, ctx: context.Background()}
}

func openSQLite(t *testing.T) *faultStore {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.db")
	st := openStore(t, store.Config{Driver: store.SQLite, DSN: path})
	return newFaultStore(t, st, sqliteDriver(t), "file:"+path+"?mode=ro")
}

func openPostgres(t *testing.T) *faultStore {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	st := openStore(t, store.Config{Driver: store.Postgres, DSN: dsn, MaxOpenConns: 20})
	return newFaultStore(t, st, "pgx", dsn)
}

func openStore(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// sqliteDriver is the name the store registered its SQLite driver under
// (it depends on whether the build has cgo).
func sqliteDriver(t *testing.T) string {
	t.Helper()
	for _, d := range []string{"sqlite3_pairingd", "sqlite"} {
		if slices.Contains(sql.Drivers(), d) {
			return d
		}
	}
	t.Fatalf("no SQLite driver among %v", sql.Drivers())
	return ""
}
