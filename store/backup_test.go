package store_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

func openSQLite(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st
}

// TestBackupOfLiveDatabaseRestores backs up while keys are being written,
// restores by copying the backup over the database file, and finds every
// key written before the backup began.
func TestBackupOfLiveDatabaseRestores(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "pairingd.db")
	st := openSQLite(t, dbPath)
	createKey := func(i int64) error {
		_, err := st.CreateAPIKey(ctx, pairing.APIKey{Name: fmt.Sprint("key-", i), Prefix: "pdk_abcdef", Hash: []byte(fmt.Sprint("hash-", i)), CreatedAt: t0})
		return err
	}
	for i := range int64(100) {
		if err := createKey(i); err != nil {
			t.Fatal(err)
		}
	}
	var written atomic.Int64
	written.Store(100)
	stop, done := make(chan struct{}), make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := createKey(written.Load()); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
	}()
	for written.Load() < 150 { // the writes are under way
		time.Sleep(time.Millisecond)
	}
	before := written.Load()
	backup := filepath.Join(dir, "backup.db")
	if err := st.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := st.Backup(ctx, backup); !errors.Is(err, store.ErrBackupExists) {
		t.Fatalf("backup over an existing file: %v, want ErrBackupExists", err)
	}
	after := written.Load()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restore: the service is stopped; the WAL of the old database goes
	// with it, and the backup becomes the database file.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	copyFile(t, backup, dbPath)
	restored := openSQLite(t, dbPath)
	defer restored.Close()
	keys, err := restored.ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(len(keys)); n < before || n > after {
		t.Fatalf("restored %d keys; %d were written before the backup began, %d when it ended", n, before, after)
	}
	for i, k := range keys {
		if k.Name != fmt.Sprint("key-", i) {
			t.Fatalf("restored key %d is %q: the copy is not a prefix of the writes", i, k.Name)
		}
	}
	if _, err := restored.APIKeyByHash(ctx, []byte("hash-99")); err != nil {
		t.Fatalf("a key written before the backup: %v", err)
	}
}

func TestBackupRefusesPostgres(t *testing.T) {
	dsn := os.Getenv("PAIRING_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PAIRING_TEST_POSTGRES_DSN not set")
	}
	st, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	target := filepath.Join(t.TempDir(), "backup.db")
	if err := st.Backup(ctx, target); err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup on PostgreSQL: %v, want a pointer to pg_dump", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file was written: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
