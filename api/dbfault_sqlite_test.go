package api

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairingd/pairingd/store"
)

// chattr sets or clears the immutable attribute, which holds even for
// root (tests often run as root, which ignores file modes).
func chattr(flag string, files ...string) error {
	return exec.Command("chattr", append([]string{flag}, files...)...).Run()
}

// TestSQLiteReadOnly: when the SQLite files cannot be written (disk made
// read-only under the service), writes fail fast with 503 unavailable,
// /readyz says so, nothing is half written, and the service recovers by
// itself once the files are writable again.
func TestSQLiteReadOnly(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pairingd.db")
	st, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newRealEnv(t, st)
	p := e.issue("ro")
	files := []string{db, db + "-wal"}
	if err := chattr("+i", files...); err != nil {
		t.Skipf("chattr +i not available here: %v", err)
	}
	t.Cleanup(func() { _ = chattr("-i", files...) })

	begin := time.Now()
	s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN})
	if s != 503 || c != "unavailable" {
		t.Fatalf("authorize on a read-only database: %d %s", s, c)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Fatalf("failing took %v", d)
	}
	res, err := e.srv.Client().Get(e.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz on a read-only database: %d", res.StatusCode)
	}

	if err := chattr("-i", files...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := e.srv.Client().Get(e.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("did not recover")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN}); s != 200 || c != "register" {
		t.Fatalf("after recovery the PIN must still work: %d %s", s, c)
	}
}
