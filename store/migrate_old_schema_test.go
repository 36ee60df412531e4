package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// A database written by the release before 0009 (schema 0001-0008, with
// Telegram dedupe marks in processed_updates) migrates, loses the table,
// and keeps working: its other rows are still there, new updates are
// stored in the inbound queue, and an update the old release handled in
// the last 48 hours is not stored (so not handled) again.
func TestMigrateDatabaseOfThePreviousRelease(t *testing.T) {
	t.Run(SQLite, func(t *testing.T) {
		testMigrateOldSchema(t, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "old.db")})
	})
	t.Run(Postgres, func(t *testing.T) {
		testMigrateOldSchema(t, Config{Driver: Postgres, DSN: freshPostgresSchema(t)})
	})
}

func testMigrateOldSchema(t *testing.T, cfg Config) {
	ctx := context.Background()
	st, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := migrations(cfg.Driver)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.exec(ctx, `CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.version > 8 {
			break
		}
		for _, stmt := range statements(m.sql) {
			if _, err := st.exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		}
		if _, err := st.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	// The marks as the previous release wrote them: source "telegram:" +
	// channel name, key the decimal update_id, seen_at unix microseconds.
	now := time.Now()
	marks := []struct {
		source, key string
		seen        time.Time
	}{
		{"telegram:bot", "17", now.Add(-time.Minute)},
		{"telegram:bot", "18", now.Add(-47 * time.Hour)},
		{"telegram:bot", "19", now.Add(-49 * time.Hour)}, // past the old dedupe window
		{"telegram:bot", "20", now.Add(-time.Minute)},    // also in inbound_events (webhook mode)
		{"messenger", "mid:2", now.Add(-time.Minute)},    // not a Telegram mark
	}
	for _, m := range marks {
		if _, err := st.exec(ctx, `INSERT INTO processed_updates (source, update_key, seen_at) VALUES (?, ?, ?)`, m.source, m.key, m.seen.UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	old := pairing.InboundEvent{Source: "messenger", Key: "mid:1", Group: "psid:1", Payload: []byte(`{}`)}
	webhook := pairing.InboundEvent{Source: "telegram:bot", Key: "20", Group: "chat:1", Payload: []byte(`{"update_id":20}`)}
	if _, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{old, webhook}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = Open(ctx, cfg, nil)
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
	tables := `SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'processed_updates%'`
	if cfg.Driver == Postgres {
		tables = `SELECT COUNT(*) FROM pg_class WHERE relname LIKE 'processed_updates%' AND relnamespace = current_schema()::regnamespace`
	}
	var n int
	if err := st.writer.QueryRowContext(ctx, tables).Scan(&n); err != nil || n != 0 {
		t.Fatalf("processed_updates still there: %d %v", n, err)
	}
	if it, err := st.InboundByKey(ctx, old.Source, old.Key); err != nil || it.Group != old.Group {
		t.Fatalf("old inbound row: %+v %v", it, err)
	}
	// The row the webhook stored is kept as it was: pending, its payload.
	if it, err := st.InboundByKey(ctx, webhook.Source, webhook.Key); err != nil || !it.DoneAt.IsZero() || string(it.Payload) != string(webhook.Payload) {
		t.Fatalf("webhook row: %+v %v", it, err)
	}
	// A recent mark is an inbound row already handled: Telegram's
	// redelivery of that update after the upgrade stores nothing.
	for _, key := range []string{"17", "18"} {
		it, err := st.InboundByKey(ctx, "telegram:bot", key)
		if err != nil || it.DoneAt.IsZero() || len(it.Payload) != 0 || !it.FailedAt.IsZero() {
			t.Fatalf("mark %s: %+v %v", key, it, err)
		}
		polled := pairing.InboundEvent{Source: "telegram:bot", Key: key, Group: "chat:1", Payload: []byte(`{"update_id":` + key + `}`)}
		if got, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{polled}, time.Now()); err != nil || got != 0 {
			t.Fatalf("update %s handled before the upgrade stored again: %d %v", key, got, err)
		}
	}
	// An old mark, another source's mark: not carried; a new update is
	// stored once.
	for _, ev := range []pairing.InboundEvent{
		{Source: "telegram:bot", Key: "19", Group: "chat:1", Payload: []byte(`{"update_id":19}`)},
		{Source: "messenger", Key: "mid:2", Group: "psid:2", Payload: []byte(`{}`)},
		{Source: "telegram:bot", Key: "21", Group: "chat:1", Payload: []byte(`{"update_id":21}`)},
	} {
		for want := 1; want >= 0; want-- {
			if got, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{ev}, time.Now()); err != nil || got != want {
				t.Fatalf("%s %s: stored %d, want %d: %v", ev.Source, ev.Key, got, want, err)
			}
		}
	}
}

// freshPostgresSchema is storetest.PostgresDSN for this package's own
// tests (storetest imports store): an empty schema in the database named
// by PAIRING_TEST_POSTGRES_DSN, dropped after the test.
func freshPostgresSchema(t *testing.T) string {
	base := os.Getenv("PAIRING_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("PAIRING_TEST_POSTGRES_DSN is not set; skipping the PostgreSQL test")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	ctx := context.Background()
	admin, err := Open(ctx, Config{Driver: Postgres, DSN: base}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.writer.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.writer.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " search_path=" + schema
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
