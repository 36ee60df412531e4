package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// BatchStats reports how many transactions the SQLite writer ran and how
// many COMMITs it made (group commit makes the second smaller).
func BatchStats(s *Store) (ran, commits int64) {
	if s.batch == nil {
		return 0, 0
	}
	return s.batch.ran.Load(), s.batch.commits.Load()
}

// HoldLeadLocks takes on st, in a transaction of its own, the claim locks
// of leads as a claimer does, until release is called.
func HoldLeadLocks(st *Store, leads []int64) (release func(), err error) {
	tx, err := st.writer.Begin()
	if err != nil {
		return nil, err
	}
	got, err := lockLeads(context.Background(), txRepo(tx, st.driver), leads, len(leads))
	if err == nil && len(got) != len(leads) {
		err = fmt.Errorf("locked %v of %v", got, leads)
	}
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return func() { tx.Rollback() }, nil
}

// SetKeyUseClock sets the clock that stamps api_keys.last_used_at.
func SetKeyUseClock(s *Store, now func() time.Time) {
	s.keyUse.mu.Lock()
	s.keyUse.now = now
	s.keyUse.mu.Unlock()
}

// WaitKeyUse waits for the last_used_at writes under way.
func WaitKeyUse(s *Store) { s.keyUse.writing.Wait() }

// RawDB is the store's writer pool, for tests that fill or read tables
// the store has no operation for.
func RawDB(s *Store) *sql.DB { return s.writer }

// PutLegacyServerSecret stores a server secret in the settings table, as
// releases before the secret file did.
func PutLegacyServerSecret(st *Store, v []byte) error {
	return st.putSetting(context.Background(), legacySecretSetting, v)
}

// ClaimStatements returns the PostgreSQL statements of the job claims as
// they are sent, by name, with the arguments of a claim at now and the
// setting the claim's transaction runs them under, if any: the
// statement's cost must not grow with the backlog.
func ClaimStatements(now, leaseEnd int64, deliveryIDs []int64) map[string]struct {
	SQL   string
	Args  []any
	Setup string
} {
	r := repo{driver: Postgres}
	const lock = "FOR UPDATE SKIP LOCKED"
	type st = struct {
		SQL   string
		Args  []any
		Setup string
	}
	return map[string]st{
		"inbound claim":                 {r.bind(inboundJobs.claimSQL(lock)), []any{now, now, 10, "bench", leaseEnd}, ""},
		"site event claim":              {r.bind(siteEventJobs.claimSQL(lock)), []any{now, now, 10, "bench", leaseEnd}, ""},
		"delivery walk, lease ran out":  {r.bind(candidateWalks[0] + " " + lock), []any{now, now, 40}, walkInOrder},
		"delivery walk, due":            {r.bind(candidateWalks[1] + " " + lock), []any{now, now, 40}, walkInOrder},
		"delivery claim by primary key": {r.bind(claimDeliveriesSQL(deliveryIDs)), []any{leaseEnd, "bench", now, now}, walkInOrder},
	}
}
