package pairing_test

import (
	"context"
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
	store *storetest.FaultStore
	clock *pairingtest.Clock
	ctx   context.Context
}

// newEnvFunc builds an env; the engine helpers below hand one to a test.
type newEnvFunc = func(t *testing.T, mod ...func(*pairing.Config)) *env

// newEnv builds an env on SQLite.
func newEnv(t *testing.T, mod ...func(*pairing.Config)) *env {
	t.Helper()
	return newEnvOn(t, storetest.SQLiteWithFaults(t), mod...)
}

func newEnvPostgres(t *testing.T, mod ...func(*pairing.Config)) *env {
	t.Helper()
	return newEnvOn(t, storetest.PostgresWithFaults(t), mod...)
}

// engines runs fn on SQLite and on PostgreSQL (skipped unless
// PAIRING_TEST_POSTGRES_DSN names a database).
func engines(t *testing.T, fn func(t *testing.T, newEnv newEnvFunc)) {
	t.Run(store.SQLite, func(t *testing.T) { fn(t, newEnv) })
	t.Run(store.Postgres, func(t *testing.T) { fn(t, newEnvPostgres) })
}

func newEnvOn(t *testing.T, st *storetest.FaultStore, mod ...func(*pairing.Config)) *env {
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
