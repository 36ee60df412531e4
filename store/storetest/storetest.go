// Package storetest opens real, migrated stores for tests: SQLite in a
// temporary directory, and PostgreSQL in a fresh schema of the database
// named by PAIRING_TEST_POSTGRES_DSN (the test is skipped when it is unset).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for schema setup

	"github.com/pairingd/pairingd/store"
)

// EnvPostgres names the PostgreSQL database the tests may use.
const EnvPostgres = "PAIRING_TEST_POSTGRES_DSN"

// SQLite opens a migrated store on a new file in t.TempDir().
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	return open(t, store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "pairingd.db")})
}

// PostgresDSN creates a fresh schema in the test database and returns a DSN
// whose search_path is that schema; the schema is dropped after the test.
// The test is skipped when PAIRING_TEST_POSTGRES_DSN is unset.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skip(EnvPostgres + " is not set; skipping the PostgreSQL test")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s: %v", EnvPostgres, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// Postgres opens a migrated store in a fresh schema (see PostgresDSN).
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	return open(t, store.Config{Driver: store.Postgres, DSN: PostgresDSN(t), MaxOpenConns: 20})
}

func open(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", cfg.Driver, err)
	}
	return st
}

// Engines runs fn as a subtest on SQLite and on PostgreSQL (skipped
// without PAIRING_TEST_POSTGRES_DSN), each with a fresh store.
func Engines(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Helper()
	for _, e := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{{store.SQLite, SQLite}, {store.Postgres, Postgres}} {
		t.Run(e.name, func(t *testing.T) { fn(t, e.open(t)) })
	}
}
