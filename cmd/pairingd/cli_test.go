package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/store"
)

// runIn runs pairingd in-process with the embedded default config, its
// database in dir.
func runIn(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	env := map[string]string{
		"PAIRINGD_DATABASE_DSN":  filepath.Join(dir, "pairingd.db"),
		"PAIRINGD_SERVER_LISTEN": "127.0.0.1:0",
	}
	var out, errb bytes.Buffer
	// A command that wrongly serves stops (and fails the test) in time.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), code
}

func noDatabase(t *testing.T, dir string, args []string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "pairingd.db")); !os.IsNotExist(err) {
		t.Errorf("pairingd %v touched the database (%v)", args, err)
	}
}

// TestHelpOnStdoutDoesNothing: every command and group answers -h/--help
// (and help) with its usage on stdout, exits 0, and runs nothing: no
// database is created.
func TestHelpOnStdoutDoesNothing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "pairingd [command]"},
		{[]string{"-h"}, "pairingd [command]"},
		{[]string{"help"}, "pairingd [command]"},
		{[]string{"help", "keys"}, "pairingd keys [command]"},
		{[]string{"serve", "--help"}, "pairingd serve"},
		{[]string{"migrate", "--help"}, "pairingd migrate"},
		{[]string{"migrate", "-h"}, "pairingd migrate"},
		{[]string{"keys", "--help"}, "revoke"},
		{[]string{"keys", "create", "--help"}, "a name for the key"},
		{[]string{"links", "-h"}, "unlink"},
		{[]string{"links", "list", "--help"}, "cursor printed by the previous page"},
		{[]string{"pins", "--help"}, "issue"},
		{[]string{"pins", "issue", "--help"}, "the person's first name"},
		{[]string{"messages", "--help"}, "retry"},
		{[]string{"messages", "failed", "--help"}, "rows to show"},
		{[]string{"events", "retry", "--help"}, "pending again"},
		{[]string{"messenger", "setup", "--help"}, "the messenger channel's name"},
		{[]string{"clients", "--help"}, "revoke"},
		{[]string{"clients", "create", "--help"}, "an exact redirect URI"},
		{[]string{"clients", "list", "--help"}, "never their secrets"},
		{[]string{"clients", "revoke", "--help"}, "CLIENT_ID"},
		{[]string{"signing-keys", "--help"}, "rotate"},
		{[]string{"signing-keys", "rotate", "--help"}, "stays in the JWKS"},
		{[]string{"backup", "--help"}, "VACUUM INTO"},
		{[]string{"copy", "--help"}, "row count"},
		{[]string{"version", "--help"}, "build date"},
		{[]string{"--config", "missing.yaml", "keys", "list", "--help"}, "LAST USED"},
	} {
		dir := t.TempDir()
		stdout, stderr, code := runIn(t, dir, c.args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage:") || !strings.Contains(stdout, c.want) {
			t.Errorf("pairingd %v: exit %d, stderr %q, stdout %q; want exit 0, usage with %q on stdout", c.args, code, stderr, stdout, c.want)
		}
		noDatabase(t, dir, c.args)
	}
}

// TestPinsIssueHelpDescribesEveryFlag: no flag is listed without words.
func TestPinsIssueHelpDescribesEveryFlag(t *testing.T) {
	t.Parallel()
	stdout, _, _ := runIn(t, t.TempDir(), "pins", "issue", "--help")
	for _, flag := range []string{"--channel", "--external-id", "--first-name", "--last-name", "--username", "--locale"} {
		i := strings.Index(stdout, flag+" string")
		line := stdout[i:]
		line = line[:strings.IndexByte(line, '\n')]
		if i < 0 || len(strings.Fields(line)) < 4 {
			t.Errorf("%s has no description in:\n%s", flag, stdout)
		}
	}
}

// TestUnknownCommandsAndFlagsExit2: usage on stderr, nothing on stdout,
// exit 2, nothing run.
func TestUnknownCommandsAndFlagsExit2(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"migrat"}, `did you mean "migrate"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"serve", "extra"}, `unknown command "extra"`},
		{[]string{"migrate", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"keys"}, "usage: pairingd keys"},
		{[]string{"keys", "bogus"}, `unknown keys command "bogus"`},
		{[]string{"keys", "create"}, "usage: pairingd keys create --name NAME"},
		{[]string{"keys", "create", "--nme", "x"}, "unknown flag: --nme"},
		{[]string{"keys", "revoke"}, "usage: pairingd keys revoke"},
		{[]string{"links", "list", "--limit", "x"}, "invalid argument"},
		{[]string{"pins", "issue", "--channel", "telegram"}, "usage: pairingd pins issue"},
		{[]string{"backup"}, "usage: pairingd backup --to FILE"},
		{[]string{"clients"}, "usage: pairingd clients"},
		{[]string{"clients", "create", "--name", "Shop"}, "at least one --redirect-uri is needed"},
		{[]string{"clients", "create", "--name", "Shop", "--redirect-uri", "http://shop.example/cb"}, "http is allowed only for localhost"},
		{[]string{"clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.example/cb#x"}, "must not have a fragment"},
		{[]string{"clients", "create", "--name", "Shop", "--redirect-uri", "shop://cb"}, "a confidential client needs an https URI"},
		{[]string{"clients", "create", "--nme", "Shop"}, "unknown flag: --nme"},
		{[]string{"clients", "revoke"}, "usage: pairingd clients revoke CLIENT_ID"},
		{[]string{"signing-keys"}, "usage: pairingd signing-keys"},
		{[]string{"signing-keys", "rotate", "extra"}, `unknown command "extra"`},
		{[]string{"version", "extra"}, `unknown command "extra"`},
	} {
		dir := t.TempDir()
		stdout, stderr, code := runIn(t, dir, c.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "Usage:") {
			t.Errorf("pairingd %v: exit %d, stdout %q, stderr %q; want exit 2 and %q with the usage on stderr", c.args, code, stdout, stderr, c.want)
		}
		noDatabase(t, dir, c.args)
	}
}

// TestPinsIssueRefusesUnknownChannel: a typo in --channel is refused,
// naming the channels there are.
func TestPinsIssueRefusesUnknownChannel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"pins", "issue", "--channel", "telegrm", "--external-id", "42"}
	stdout, stderr, code := runIn(t, dir, args...)
	if code != 2 || stdout != "" || !strings.Contains(stderr, `unknown channel "telegrm"`) || !strings.Contains(stderr, "messenger, telegram") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	noDatabase(t, dir, args)

	cfg := Config{Channels: []ChannelConfig{
		{Type: "telegram", Settings: &telegram.Config{Name: "tg-shop"}},
		{Type: "messenger", Settings: &messenger.PageConfig{Name: "fb-shop"}},
	}}
	if err := knownChannel(cfg, "telegram"); err == nil || !strings.Contains(err.Error(), "the configured channels are fb-shop, tg-shop") {
		t.Fatalf("a channel type where channels are configured: %v", err)
	}
	if err := knownChannel(cfg, "fb-shop"); err != nil {
		t.Fatalf("a configured channel: %v", err)
	}
}

// TestVersionFromLdflags: version and --version print the same four
// facts; release builds set them with -ldflags -X.
func TestVersionFromLdflags(t *testing.T) {
	old := [3]string{version, commit, date}
	t.Cleanup(func() { version, commit, date = old[0], old[1], old[2] })
	version, commit, date = "v1.2.3", "0123456789abcdef", "2026-12-06T20:00:00Z"
	a, _, codeA := runIn(t, t.TempDir(), "version")
	b, _, codeB := runIn(t, t.TempDir(), "--version")
	if codeA != 0 || codeB != 0 || a != b {
		t.Fatalf("version (exit %d) %q and --version (exit %d) %q differ", codeA, a, codeB, b)
	}
	for _, want := range []string{"pairingd v1.2.3\n", "commit: 0123456789abcdef\n", "built:  2026-12-06T20:00:00Z\n", "go:     go1."} {
		if !strings.Contains(a, want) {
			t.Errorf("version output %q lacks %q", a, want)
		}
	}
	if versionString() != "pairingd v1.2.3" {
		t.Errorf("versionString %q", versionString())
	}
}

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		stdout, stderr, code := runIn(t, t.TempDir(), "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "pairingd") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes", shell, code, stderr, len(stdout))
		}
	}
}

// TestBackupCommand backs up with the CLI, refuses to overwrite, and the
// copy opens with the data in it.
func TestBackupCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, stderr, code := runIn(t, dir, "keys", "create", "--name", "site"); code != 0 {
		t.Fatalf("keys create: %s", stderr)
	}
	target := filepath.Join(dir, "backup.db")
	if stdout, stderr, code := runIn(t, dir, "backup", "--to", target); code != 0 || !strings.Contains(stdout, "backed up to") ||
		!strings.Contains(stdout, "server secret is not in the backup: keep "+filepath.Join(dir, "pairingd.db.secret")) {
		t.Fatalf("backup: exit %d, %q %q", code, stdout, stderr)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, stderr, code := runIn(t, dir, "backup", "--to", target); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("backup over the backup: exit %d, %q", code, stderr)
	}
	st, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.ListAPIKeys(context.Background())
	if err != nil || len(keys) != 1 || keys[0].Name != "site" {
		t.Fatalf("keys in the backup: %v, %v", keys, err)
	}

	empty := t.TempDir()
	if _, stderr, code := runIn(t, empty, "backup", "--to", filepath.Join(empty, "b.db")); code != 1 || !strings.Contains(stderr, "no database at") {
		t.Fatalf("backup of no database: exit %d, %q", code, stderr)
	}
	noDatabase(t, empty, []string{"backup"})
}

// TestCopyCommandRefusals: copy needs a SQLite file that exists (it does
// not create one) and a PostgreSQL target.
func TestCopyCommandRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"copy"}, 2, "usage: pairingd copy --from SQLITE_FILE"},
		{[]string{"copy", "--from", missing}, 2, "no target"},
		{[]string{"copy", "--from", missing, "--to", "postgres://u@127.0.0.1:1/x"}, 1, "no SQLite database at " + missing},
	} {
		_, stderr, code := runIn(t, dir, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("pairingd %v: exit %d, %q; want exit %d with %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("copy created the missing source: %v", err)
	}
	noDatabase(t, dir, []string{"copy"})
}
