package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/store/storetest"
)

// TestBinaryCopySQLiteToPostgres moves a deployment as docs/operations.md
// says: a SQLite pairingd with a key, a link and PINs in flight is
// stopped, pairingd copy fills a new PostgreSQL database, and pairingd
// on PostgreSQL goes on where SQLite left off: the key works, a PIN issued
// before the copy is spent after it, the link answers match, and new rows
// get new ids.
func TestBinaryCopySQLiteToPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dir := t.TempDir()
	env := baseEnv(dir)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)
	p := issuePIN(t, dir, env, "42")
	code, body := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN})
	if code != 200 || body["outcome"] != "register" {
		t.Fatalf("register on SQLite: %d %v", code, body)
	}
	if code, body = in.call("POST", "/v1/links", key, map[string]any{"grant": body["grant"], "user_id": "site-user-7"}); code != 200 || body["outcome"] != "linked" {
		t.Fatalf("link on SQLite: %d %v", code, body)
	}
	linked := issuePIN(t, dir, env, "42") // the linked chat asks again
	fresh := issuePIN(t, dir, env, "43")  // a new chat
	in.stop()

	// The target is the configured database (no DSN on the command line).
	// The server secret is not in the database: PostgreSQL is given the
	// file SQLite kept beside it, so the PINs in flight stay valid.
	pg := append(baseEnv(dir), "PAIRINGD_DATABASE_DRIVER=postgres", "PAIRINGD_DATABASE_DSN="+dsn,
		"PAIRINGD_PAIRING_SECRET_FILE="+filepath.Join(dir, "pairingd.db.secret"))
	out := cli(t, dir, pg, "copy", "--from", filepath.Join(dir, "pairingd.db"))
	for _, want := range []string{"TABLE", "web_users", "api_keys", "settings", "row counts checked"} {
		if !strings.Contains(out, want) {
			t.Fatalf("copy printed no %q:\n%s", want, out)
		}
	}

	// A second copy, to the DSN given, finds the target used and changes
	// nothing.
	cmd := exec.Command(binPath, "copy", "--from", filepath.Join(dir, "pairingd.db"), "--to", dsn)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "not empty") {
		t.Fatalf("copy into the copied database: %v, exit %d, %s", err, cmd.ProcessState.ExitCode(), stderr.String())
	}

	in = start(t, dir, pg)
	code, body = in.call("POST", "/v1/authorize", key, map[string]any{"buid": linked.BUID, "pin": linked.PIN})
	if code != 200 || body["outcome"] != "match" || body["user_id"] != "site-user-7" {
		t.Fatalf("a PIN of before the copy, on PostgreSQL: %d %v", code, body)
	}
	code, body = in.call("POST", "/v1/authorize", key, map[string]any{"buid": fresh.BUID, "pin": fresh.PIN})
	if code != 200 || body["outcome"] != "register" {
		t.Fatalf("a new chat's PIN of before the copy, on PostgreSQL: %d %v", code, body)
	}
	// New rows after the copy: a lead, a person, a link.
	next := issuePIN(t, dir, pg, "44")
	code, body = in.call("POST", "/v1/authorize", key, map[string]any{"buid": next.BUID, "pin": next.PIN})
	if code != 200 || body["outcome"] != "register" {
		t.Fatalf("a PIN issued on PostgreSQL: %d %v", code, body)
	}
	if code, body = in.call("POST", "/v1/links", key, map[string]any{"grant": body["grant"], "user_id": "site-user-8"}); code != 200 || body["outcome"] != "linked" {
		t.Fatalf("link on PostgreSQL: %d %v", code, body)
	}
	if out := cli(t, dir, pg, "links", "list"); !strings.Contains(out, "site-user-7") || !strings.Contains(out, "site-user-8") {
		t.Fatalf("links on PostgreSQL:\n%s", out)
	}
	in.stop()
}
