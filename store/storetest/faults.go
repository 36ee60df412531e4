package storetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// FaultStore is a real store with the faults tests inject (the database
// down, a spend lost to a concurrent writer) and the reads tests make to check what was stored. It is
// the thin wrapper tests of the service put around the store instead of
// an in-memory copy of the storage rules.
type FaultStore struct {
	*store.Store
	t testing.TB
	// inspect reads tables the service has no query for, on a connection
	// of its own.
	inspect *sql.DB

	mu         sync.Mutex
	down       error
	missSpends int
}

// SQLiteWithFaults opens a migrated store on a new SQLite file in
// t.TempDir() behind a FaultStore.
func SQLiteWithFaults(t testing.TB) *FaultStore {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pairingd.db")
	st := open(t, store.Config{Driver: store.SQLite, DSN: path})
	return withFaults(t, st, sqliteDriver(t), "file:"+path+"?mode=ro")
}

// PostgresWithFaults opens a migrated store in a fresh PostgreSQL schema
// behind a FaultStore (skipped without PAIRING_TEST_POSTGRES_DSN).
func PostgresWithFaults(t testing.TB) *FaultStore {
	t.Helper()
	dsn := PostgresDSN(t)
	st := open(t, store.Config{Driver: store.Postgres, DSN: dsn, MaxOpenConns: 20})
	return withFaults(t, st, "pgx", dsn)
}

// sqliteDriver is the name the store registered its SQLite driver under
// (it depends on whether the build has cgo).
func sqliteDriver(t testing.TB) string {
	t.Helper()
	for _, d := range []string{"sqlite3_pairingd", "sqlite"} {
		if slices.Contains(sql.Drivers(), d) {
			return d
		}
	}
	t.Fatalf("no SQLite driver among %v", sql.Drivers())
	return ""
}

func withFaults(t testing.TB, st *store.Store, driver, dsn string) *FaultStore {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &FaultStore{Store: st, t: t, inspect: db}
}

var _ pairing.Store = (*FaultStore)(nil)

// SetDown makes Ping, Tx and the lookups every flow starts with fail with
// err (nil: the database is back).
func (f *FaultStore) SetDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = err
}

func (f *FaultStore) fault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// MissNextSpends makes the next n SpendCredential calls change no row
// even when the credential is spendable, as an UPDATE can on PostgreSQL
// when a concurrent writer's change decides its WHERE (the row re-read
// afterwards may look spendable again).
func (f *FaultStore) MissNextSpends(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.missSpends = n
}

func (f *FaultStore) missSpend() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.missSpends == 0 {
		return false
	}
	f.missSpends--
	return true
}

func (f *FaultStore) Ping(ctx context.Context) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

func (f *FaultStore) Tx(ctx context.Context, fn func(pairing.Repo) error) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Tx(ctx, func(r pairing.Repo) error { return fn(faultRepo{Repo: r, f: f}) })
}

func (f *FaultStore) SpendCredential(ctx context.Context, id int64, buidHash, pinHash []byte, now time.Time, g pairing.KeyGuard) (pairing.Spent, bool, error) {
	return faultRepo{Repo: f.Store, f: f}.SpendCredential(ctx, id, buidHash, pinHash, now, g)
}

func (f *FaultStore) WebUserByID(ctx context.Context, id int64) (pairing.WebUser, error) {
	if err := f.fault(); err != nil {
		return pairing.WebUser{}, err
	}
	return f.Store.WebUserByID(ctx, id)
}

func (f *FaultStore) WebUserByUserID(ctx context.Context, userID string) (pairing.WebUser, error) {
	if err := f.fault(); err != nil {
		return pairing.WebUser{}, err
	}
	return f.Store.WebUserByUserID(ctx, userID)
}

func (f *FaultStore) LinkOfUser(ctx context.Context, userID string) (pairing.WebUser, []pairing.Lead, error) {
	if err := f.fault(); err != nil {
		return pairing.WebUser{}, nil, err
	}
	return f.Store.LinkOfUser(ctx, userID)
}

func (f *FaultStore) LeadByKey(ctx context.Context, k pairing.LeadKey) (pairing.Lead, error) {
	if err := f.fault(); err != nil {
		return pairing.Lead{}, err
	}
	return f.Store.LeadByKey(ctx, k)
}

func (f *FaultStore) APIKeyByHash(ctx context.Context, h []byte) (pairing.APIKey, error) {
	if err := f.fault(); err != nil {
		return pairing.APIKey{}, err
	}
	return f.Store.APIKeyByHash(ctx, h)
}

// faultRepo is a transaction's Repo with the same faults.
type faultRepo struct {
	pairing.Repo
	f *FaultStore
}

func (r faultRepo) SpendCredential(ctx context.Context, id int64, buidHash, pinHash []byte, now time.Time, g pairing.KeyGuard) (pairing.Spent, bool, error) {
	if r.f.missSpend() {
		return pairing.Spent{}, false, nil
	}
	return r.Repo.SpendCredential(ctx, id, buidHash, pinHash, now, g)
}

// Audit is the audit trail, oldest first.
func (f *FaultStore) Audit() []pairing.AuditEvent {
	f.t.Helper()
	evs, err := f.AuditEvents(context.Background(), 1<<20)
	if err != nil {
		f.t.Fatal(err)
	}
	slices.Reverse(evs)
	return evs
}

// SiteEvents lists the site events, oldest first.
func (f *FaultStore) SiteEvents() []pairing.SiteEvent {
	f.t.Helper()
	evs, err := f.SiteEventsAfter(context.Background(), 0, 1<<20)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// Persons counts the persons.
func (f *FaultStore) Persons() int {
	f.t.Helper()
	n, err := f.Store.Persons(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return int(n)
}

// LinkTokens lists the stored deep-link tokens (hash and user), oldest
// first.
func (f *FaultStore) LinkTokens() []pairing.LinkToken {
	f.t.Helper()
	rows, err := f.inspect.Query(`SELECT hash, user_id FROM link_tokens ORDER BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []pairing.LinkToken
	for rows.Next() {
		var tok pairing.LinkToken
		if err := rows.Scan(&tok.Hash, &tok.UserID); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, tok)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// Deliveries counts the stored notification deliveries.
func (f *FaultStore) Deliveries() int {
	f.t.Helper()
	var n int
	if err := f.inspect.QueryRow(`SELECT count(*) FROM outbox_deliveries`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}
