//go:build unix

package store_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// withUmask runs the test under umask (the process's: these tests do not
// run in parallel).
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

// TestSQLiteFilesPrivateUnderOpenUmask: under umask 000 a new database, its
// -wal and -shm files, a secret file, the directory made for that file and
// a backup are readable by the service's user only.
func TestSQLiteFilesPrivateUnderOpenUmask(t *testing.T) {
	withUmask(t, 0)
	db := filepath.Join(t.TempDir(), "pairingd.db")
	st := openSQLite(t, db)
	// A write makes SQLite create the -wal (and the -shm with WAL mode).
	if _, err := st.CreateAPIKey(ctx, pairing.APIKey{Name: "k", Prefix: "pdk_abcdef", Hash: []byte("h"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		wantMode(t, p, 0o600)
	}
	secretDir := filepath.Join(t.TempDir(), "etc", "pairingd")
	if err := store.CreateSecretFile(filepath.Join(secretDir, "pairing.secret"), bytes.Repeat([]byte("s"), 32)); err != nil {
		t.Fatal(err)
	}
	wantMode(t, secretDir, 0o700)
	wantMode(t, filepath.Join(secretDir, "pairing.secret"), 0o600)
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := st.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	wantMode(t, backup, 0o600)
	if fi, _ := os.Stat(backup); fi.Size() == 0 {
		t.Fatal("the backup is empty")
	}
	st.Close()
}

// TestSQLiteFilesOfEarlierReleaseRestricted: a database left 0644 (with its
// -wal and -shm) by an earlier release is set to 0600 at open, with a log
// line naming each file.
func TestSQLiteFilesOfEarlierReleaseRestricted(t *testing.T) {
	withUmask(t, 0o022)
	dir := t.TempDir()
	dirInfo, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "pairingd.db")
	st := openSQLite(t, db)
	if _, err := st.CreateAPIKey(ctx, pairing.APIKey{Name: "k", Prefix: "pdk_abcdef", Hash: []byte("h"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// Leave -wal and -shm in place, as after a crash.
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	st2, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: db}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	defer st.Close()
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		wantMode(t, p, 0o600)
		if !strings.Contains(logs.String(), "file="+p+" ") {
			t.Errorf("no log line for %s:\n%s", p, logs.String())
		}
	}
	// An existing directory is not changed: it may be shared on purpose.
	wantMode(t, dir, dirInfo.Mode().Perm())
}
