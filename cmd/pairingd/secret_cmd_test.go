package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/store/storetest"
)

// runEnv runs pairingd in-process with env as its whole environment.
func runEnv(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), code
}

// TestSecretOnPostgresMovedOutByExport walks a PostgreSQL operator's
// upgrade: the database holds the secret an earlier release generated;
// without a configured secret every command that needs it refuses (exit 2)
// and says how to export it; `secret export` writes it to a 0600 file;
// with that file configured the service runs and the stored copy is gone.
func TestSecretOnPostgresMovedOutByExport(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dir := t.TempDir()
	env := map[string]string{"PAIRINGD_DATABASE_DRIVER": "postgres", "PAIRINGD_DATABASE_DSN": dsn}
	if out, errOut, code := runEnv(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate without a secret: %d %s %s", code, out, errOut)
	}
	legacy := make([]byte, 32)
	_, _ = rand.Read(legacy)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO settings (name, value) VALUES ('server_secret', $1)`, legacy); err != nil {
		t.Fatal(err)
	}

	_, errOut, code := runEnv(t, env, "keys", "create", "--name", "site")
	if code != 2 || !strings.Contains(errOut, "pairingd secret export --to FILE") || !strings.Contains(errOut, "PAIRINGD_PAIRING_SECRET_FILE") {
		t.Fatalf("no secret configured: exit %d, %s", code, errOut)
	}

	file := filepath.Join(dir, "pairing.secret")
	if out, errOut, code := runEnv(t, env, "secret", "export", "--to", file); code != 0 || !strings.Contains(out, file) {
		t.Fatalf("export: %d %s %s", code, out, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported file: %v %v", fi, err)
	}
	if _, _, code := runEnv(t, env, "secret", "export", "--to", file); code == 0 {
		t.Fatal("export over an existing file succeeded")
	}

	env["PAIRINGD_PAIRING_SECRET_FILE"] = file
	if out, errOut, code := runEnv(t, env, "keys", "create", "--name", "site"); code != 0 || !strings.Contains(out, "pdk_") {
		t.Fatalf("with the exported file: %d %s %s", code, out, errOut)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM settings WHERE name = 'server_secret' OR value = $1`, legacy).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the secret is still in the settings table: %d rows, %v", n, err)
	}

	delete(env, "PAIRINGD_PAIRING_SECRET_FILE")
	_, errOut, code = runEnv(t, env, "keys", "list")
	if code != 2 || !strings.Contains(errOut, "PAIRINGD_PAIRING_SECRET_FILE") || strings.Contains(errOut, "secret export") {
		t.Fatalf("nothing stored, nothing configured: exit %d, %s", code, errOut)
	}
}
