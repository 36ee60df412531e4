package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// When the database drops a batch's transaction under it (here: a
// function ends it with a bare ROLLBACK, as SQLite does itself on some
// I/O errors), every caller of the batch gets ErrUnavailable, nothing of
// the batch is written, and the next transaction works.
func TestBatchAbortedWhenTheTransactionIsGone(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "p.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	create := func(name string) func(pairing.Repo) error {
		return func(r pairing.Repo) error {
			_, err := r.CreateAPIKey(ctx, pairing.APIKey{Name: name, Prefix: "pk_" + name, Hash: []byte(name), CreatedAt: t0})
			return err
		}
	}
	batch := []*txRequest{
		{ctx: ctx, fn: create("a"), done: make(chan txResult, 1)},
		{ctx: ctx, fn: func(r pairing.Repo) error {
			if err := create("b")(r); err != nil {
				return err
			}
			_, err := r.(repo).w.ExecContext(ctx, "ROLLBACK")
			return err
		}, done: make(chan txResult, 1)},
		{ctx: ctx, fn: create("c"), done: make(chan txResult, 1)},
	}
	st.batch.runBatch(batch)
	for i, req := range batch {
		res := <-req.done
		if !errors.Is(res.err, pairing.ErrUnavailable) || !errors.Is(res.err, errBatchAborted) {
			t.Fatalf("request %d: %v", i, res.err)
		}
	}
	if keys, err := st.ListAPIKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("written after an aborted batch: %v %v", keys, err)
	}
	if err := st.Tx(ctx, create("d")); err != nil {
		t.Fatalf("next transaction: %v", err)
	}
	if keys, err := st.ListAPIKeys(ctx); err != nil || len(keys) != 1 || keys[0].Name != "d" {
		t.Fatalf("keys %v %v", keys, err)
	}
}

// Every SQLite connection, with either driver, checkpoints the WAL in small
// steps (walAutoCheckpoint) and keeps temporary files in memory
// (tempStore).
func TestSQLiteConnectionSettings(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "p.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, db := range []struct {
		name string
		conn conn
	}{{"writer", st.w}, {"reader", st.r}} {
		var n int
		if err := st.queryOne(ctx, db.conn, `PRAGMA wal_autocheckpoint`, nil, &n); err != nil || n != walAutoCheckpoint {
			t.Fatalf("%s: wal_autocheckpoint %d, %v; want %d", db.name, n, err, walAutoCheckpoint)
		}
		// 2 is MEMORY.
		if err := st.queryOne(ctx, db.conn, `PRAGMA temp_store`, nil, &n); err != nil || n != 2 {
			t.Fatalf("%s: temp_store %d, %v; want 2 (MEMORY)", db.name, n, err)
		}
	}
}
