package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the real pairingd binary, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pairingd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "pairingd")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pairingd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is a running pairingd process.
type instance struct {
	t      *testing.T
	dir    string
	env    []string
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	stderr bytes.Buffer
}

// baseEnv is the environment for a pairingd in dir on SQLite (or the
// given database).
func baseEnv(dir string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"PAIRINGD_SERVER_LISTEN=127.0.0.1:0",
		"PAIRINGD_DATABASE_DSN=" + filepath.Join(dir, "pairingd.db"),
		"PAIRINGD_PAIRING_LINK_URL=https://shop.example/pair?buid={buid}",
		"PAIRINGD_LOG_LEVEL=debug",
	}
	return append(env, extra...)
}

// cli runs one pairingd command to completion and returns stdout.
func cli(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("pairingd %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	return out.String()
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// start runs `pairingd serve` and waits for its listening line.
func start(t *testing.T, dir string, env []string) *instance {
	t.Helper()
	in := &instance{t: t, dir: dir, env: env}
	in.cmd = exec.Command(binPath, "serve")
	in.cmd.Dir = dir
	in.cmd.Env = env
	pr, pw := io.Pipe()
	in.cmd.Stderr = pw
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			in.mu.Lock()
			in.stderr.WriteString(line + "\n")
			in.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			in.cmd.Process.Kill()
			in.cmd.Wait()
		}
		pw.Close()
	})
	select {
	case a := <-addr:
		in.base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("pairingd did not start; stderr:\n%s", in.logs())
	}
	return in
}

func (in *instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stderr.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() {
	in.t.Helper()
	in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			in.t.Fatalf("exit after SIGTERM: %v\n%s", err, in.logs())
		}
	case <-time.After(15 * time.Second):
		in.t.Fatalf("no exit within 15s of SIGTERM\n%s", in.logs())
	}
}

// call does one API request and decodes the JSON answer.
func (in *instance) call(method, path, key string, body any) (int, map[string]any) {
	in.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, in.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			in.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

type issued struct {
	BUID      string    `json:"buid"`
	PIN       string    `json:"pin"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func issuePIN(t *testing.T, dir string, env []string, ext string) issued {
	t.Helper()
	var p issued
	out := cli(t, dir, env, "pins", "issue", "--channel", "telegram", "--external-id", ext, "--first-name", "Ann", "--locale", "en")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.PIN == "" || !strings.Contains(p.URL, p.BUID) {
		t.Fatalf("pins issue printed %q: %v", out, err)
	}
	return p
}

// TestBinaryRegisterThenMatch is the README's curl session, run against
// the real binary on its embedded SQLite default.
func TestBinaryRegisterThenMatch(t *testing.T) {
	dir := t.TempDir()
	env := baseEnv(dir)
	if out := cli(t, dir, env, "migrate"); !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %q", out)
	}
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	if !strings.HasPrefix(key, "pdk_") {
		t.Fatalf("key line %q", key)
	}
	in := start(t, dir, env)

	if code, body := in.call("GET", "/healthz", "", nil); code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, body)
	}
	if code, _ := in.call("GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("readyz %d", code)
	}

	p := issuePIN(t, dir, env, "42")
	if code, body := in.call("POST", "/v1/authorize", "", map[string]any{"buid": p.BUID, "pin": p.PIN}); code != 401 {
		t.Fatalf("no key: %d %v", code, body)
	}
	code, body := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN})
	if code != 200 || body["outcome"] != "register" || body["grant"] == nil {
		t.Fatalf("register: %d %v", code, body)
	}
	code, body = in.call("POST", "/v1/links", key, map[string]any{"grant": body["grant"], "user_id": "site-user-7"})
	if code != 200 || body["outcome"] != "linked" {
		t.Fatalf("links: %d %v", code, body)
	}

	// A restart keeps the generated server secret: a PIN issued before the
	// restart still works after it.
	p = issuePIN(t, dir, env, "42")
	in.stop()
	in = start(t, dir, env)
	code, body = in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN})
	if code != 200 || body["outcome"] != "match" || body["user_id"] != "site-user-7" {
		t.Fatalf("match: %d %v", code, body)
	}
	code, body = in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN})
	if code != 422 || errCode(body) != "pin_used" {
		t.Fatalf("reuse: %d %v", code, body)
	}
	if code, body := in.call("GET", "/v1/links/site-user-7", key, nil); code != 200 || body["user_id"] != "site-user-7" {
		t.Fatalf("get link: %d %v", code, body)
	}
	if out := cli(t, dir, env, "links", "show", "site-user-7"); !strings.Contains(out, `"channel": "telegram"`) {
		t.Fatalf("links show: %s", out)
	}
	if out := cli(t, dir, env, "links", "list"); !strings.Contains(out, "site-user-7") {
		t.Fatalf("links list: %s", out)
	}
	if code, body := in.call("DELETE", "/v1/links/site-user-7", key, nil); code != 200 || body["unlinked"] != true {
		t.Fatalf("delete: %d %v", code, body)
	}
	if code, body := in.call("DELETE", "/v1/links/site-user-7", key, nil); code != 200 || body["unlinked"] != false {
		t.Fatalf("delete again: %d %v", code, body)
	}

	// The key's use is recorded (in the background, so it may lag a request).
	waitFor(t, in, "keys list to show the key's last use", func() bool {
		lines := strings.Split(strings.TrimSpace(cli(t, dir, env, "keys", "list")), "\n")
		return len(lines) == 2 && len(strings.Fields(lines[1])) == 6 && strings.Fields(lines[1])[4] != "-"
	})

	// A revoked key stops working within the key cache's 5 seconds
	// (docs/security.md), and for good.
	cli(t, dir, env, "keys", "revoke", "site")
	revoked := time.Now()
	for {
		code, _ := in.call("GET", "/v1/links/x", key, nil)
		if code == 401 {
			break
		}
		if time.Since(revoked) > 6*time.Second {
			t.Fatalf("revoked key still answered %d after %v", code, time.Since(revoked))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := in.call("GET", "/v1/links/x", key, nil); code != 401 {
		t.Fatalf("revoked key: %d", code)
	}
	in.stop()
	// The server secret was made by `migrate`'s first start, beside the
	// database, readable by the service's user only.
	secretFile := filepath.Join(dir, "pairingd.db.secret")
	fi, err := os.Stat(secretFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	raw, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	serverSecret := strings.TrimPrefix(strings.TrimSpace(string(raw)), "base64:")
	for _, secret := range []string{p.PIN, p.BUID, key, serverSecret} {
		if strings.Contains(in.logs(), secret) {
			t.Fatalf("a secret reached the log:\n%s", in.logs())
		}
	}
}

func TestBinaryRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binPath, "serve")
	cmd.Dir = dir
	cmd.Env = baseEnv(dir, "PAIRINGD_PAIRING_PIN_TTL=-5m")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "pairing.pin_ttl") {
		t.Fatalf("want exit 2 naming pairing.pin_ttl, got %v: %s", err, out)
	}
}

func TestBinaryVersionAndUsage(t *testing.T) {
	out, err := exec.Command(binPath, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "pairingd ") {
		t.Fatalf("version: %q %v", out, err)
	}
	cmd := exec.Command(binPath, "frobnicate")
	cmd.Dir = t.TempDir()
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(b), "unknown command") {
		t.Fatalf("unknown command: %v %s", err, b)
	}
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}
