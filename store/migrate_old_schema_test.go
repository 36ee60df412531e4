package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// A database written by the release before 0009 (schema 0001-0008, with
// Telegram dedupe marks in processed_updates) migrates, loses the table,
// and keeps working: its other rows are still there and new updates are
// stored in the inbound queue.
func TestMigrateDatabaseOfThePreviousRelease(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	st, err := Open(ctx, Config{Driver: SQLite, DSN: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db := st.writer
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.version > 8 {
			break
		}
		for _, stmt := range statements(m.sql) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"17", "18"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO processed_updates (source, update_key, seen_at) VALUES (?, ?, ?)`, "telegram:bot", key, time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	old := pairing.InboundEvent{Source: "messenger", Key: "mid:1", Group: "psid:1", Payload: []byte(`{}`)}
	if _, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{old}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = Open(ctx, Config{Driver: SQLite, DSN: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := st.SchemaVersion(ctx); err != nil || v != all[len(all)-1].version || v < 9 {
		t.Fatalf("schema version %d %v", v, err)
	}
	var n int
	if err := st.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'processed_updates%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("processed_updates still there: %d %v", n, err)
	}
	if it, err := st.InboundByKey(ctx, old.Source, old.Key); err != nil || it.Group != old.Group {
		t.Fatalf("old inbound row: %+v %v", it, err)
	}
	// The update the old release marked in processed_updates is stored as
	// new: handling it again is the intake's business now.
	polled := pairing.InboundEvent{Source: "telegram:bot", Key: "17", Group: "chat:1", Payload: []byte(`{"update_id":17}`)}
	for want := 1; want >= 0; want-- {
		if got, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{polled}, time.Now()); err != nil || got != want {
			t.Fatalf("stored %d, want %d: %v", got, want, err)
		}
	}
}
