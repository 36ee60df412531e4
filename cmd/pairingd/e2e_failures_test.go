package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// cliExit runs one pairingd command and returns stdout, stderr and the
// exit code, for the commands expected to fail.
func cliExit(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("pairingd %v: %v", args, err)
	return "", "", -1
}

// metricsText scrapes the instance's /metrics.
func (in *instance) metricsText() string {
	in.t.Helper()
	res, err := http.Get(in.base + "/metrics")
	if err != nil {
		in.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// waitFor polls cond every 50 ms for up to 30 s.
func waitFor(t *testing.T, in *instance, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, in.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBinaryMessagesFailedAndRetry: a notification the platform refuses
// fails, shows on /metrics and in `pairingd messages failed`; after its
// max age has passed, `pairingd messages retry` queues it again and the
// running worker delivers it (the max age counts from the retry). Retrying
// it again, or an unknown id, is refused with exit code 1; bad arguments
// exit 2.
func TestBinaryMessagesFailedAndRetry(t *testing.T) {
	tg := tgfake.New(t, "123456:AAE-failures-token-part")
	dir := t.TempDir()
	env := telegramEnv(dir, tg, "PAIRINGD_JOBS_POLL_INTERVAL=100ms", "PAIRINGD_JOBS_MAX_AGE=2s")
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)

	p := issuePIN(t, dir, env, "77")
	if code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN, "user_id": "site-user-9"}); code != 200 || out["outcome"] != "linked" {
		t.Fatalf("link: %d %v", code, out)
	}
	tg.FailNext("sendMessage", 400, 0) // "Bad Request: chat not found": refused for good
	code, out := in.call("POST", "/v1/users/site-user-9/messages", key, map[string]any{"text": "Your order shipped"})
	if code != 202 {
		t.Fatalf("notify: %d %v", code, out)
	}
	accepted := time.Now()
	msgID := int64(out["id"].(float64))
	delivery := func() map[string]any {
		code, out := in.call("GET", fmt.Sprintf("/v1/messages/%d", msgID), key, nil)
		if code != 200 {
			t.Fatalf("get message: %d %v", code, out)
		}
		return out["deliveries"].([]any)[0].(map[string]any)
	}
	waitFor(t, in, "the delivery to fail", func() bool { return delivery()["status"] == "failed" })
	if m := in.metricsText(); !strings.Contains(m, `pairingd_notify_deliveries{status="failed"} 1`+"\n") ||
		!strings.Contains(m, `pairingd_platform_sends_total{channel="telegram",kind="notification",result="failed"} 1`+"\n") ||
		!strings.Contains(m, `pairingd_queue_jobs_finished_total{queue="notify",result="failed"} 1`+"\n") ||
		!regexp.MustCompile(`(?m)^pairingd_build_info\{commit="[^"]*",go_version="go[^"]+",version="[^"]+"\} 1$`).MatchString(m) {
		t.Fatalf("/metrics does not count the failed delivery:\n%s", m)
	}

	listed := cli(t, dir, env, "messages", "failed")
	lines := strings.Split(strings.TrimSpace(listed), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^MESSAGE\s+DELIVERY\s+USER_ID\s+CHANNEL\s+ATTEMPTS\s+FAILED_AT\s+LAST_ERROR$`).MatchString(lines[0]) {
		t.Fatalf("messages failed:\n%s", listed)
	}
	row := regexp.MustCompile(fmt.Sprintf(`^%d\s+(\d+)\s+site-user-9\s+telegram\s+1\s+\S+Z\s+rejected: .*chat not found`, msgID)).FindStringSubmatch(lines[1])
	if row == nil {
		t.Fatalf("row %q", lines[1])
	}
	deliveryID := row[1]

	// jobs.max_age (2s) passes: a retry must still be sent.
	time.Sleep(time.Until(accepted.Add(2500 * time.Millisecond)))
	out2 := cli(t, dir, env, "messages", "retry", deliveryID)
	if !strings.Contains(out2, "delivery "+deliveryID+" (message ") || !strings.Contains(out2, "queued again") {
		t.Fatalf("retry printed %q", out2)
	}
	if _, err := tg.WaitSent(ctx, 1); err != nil {
		t.Fatalf("the retried delivery was not sent: %v\n%s", err, in.logs())
	}
	if sent := tg.Sent(); len(sent) != 1 || sent[0].ChatID != 77 || sent[0].Text != "Your order shipped" {
		t.Fatalf("sent %+v", sent)
	}
	waitFor(t, in, "the delivery to be recorded", func() bool { return delivery()["status"] == "delivered" })
	if d := delivery(); d["attempts"] != float64(1) {
		t.Fatalf("after the retry: %v", d)
	}
	if m := in.metricsText(); !strings.Contains(m, `pairingd_notify_deliveries{status="failed"} 0`+"\n") ||
		!strings.Contains(m, `pairingd_notify_deliveries{status="queued"} 0`+"\n") {
		t.Fatalf("/metrics after the retry:\n%s", m)
	}
	if listed := cli(t, dir, env, "messages", "failed"); strings.Count(listed, "\n") != 1 {
		t.Fatalf("still listed:\n%s", listed)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"messages", "retry", deliveryID}, 1, "delivery " + deliveryID + " is delivered, not failed"},
		{[]string{"messages", "retry", "999999"}, 1, "no delivery 999999"},
		{[]string{"messages", "retry", "abc"}, 2, "not an id"},
		{[]string{"messages", "retry"}, 2, "usage: pairingd messages"},
		{[]string{"messages", "failed", "--limit", "0"}, 2, "1..1000"},
		{[]string{"messages", "failed", "extra"}, 2, "usage: pairingd messages failed"},
		{[]string{"messages", "resend"}, 2, `unknown messages command "resend"`},
		{[]string{"messages"}, 2, "usage: pairingd messages"},
	} {
		stdout, stderr, code := cliExit(t, dir, env, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("pairingd %v: exit %d, stderr %q, stdout %q; want exit %d and %q", c.args, code, stderr, stdout, c.code, c.want)
		}
	}
	in.stop()
}

// TestBinaryEventsFailedAndRetry: a site event the site answers 410 is
// given up, listed by `pairingd events failed`, and `pairingd events
// retry` makes the running site event worker send it again.
func TestBinaryEventsFailedAndRetry(t *testing.T) {
	const hookSecret = "e2e-webhook-secret-failures-0123"
	var mu sync.Mutex
	gone := true
	var delivered []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			w.WriteHeader(http.StatusGone)
			return
		}
		delivered = append(delivered, r.Header.Get("Pairingd-Event-Id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rc.Close()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hook_secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(dir, "PAIRINGD_SITE_WEBHOOK_URL="+rc.URL+"/hook", "PAIRINGD_SITE_WEBHOOK_SECRET_FILE="+secretFile,
		"PAIRINGD_JOBS_POLL_INTERVAL=100ms")
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)

	p := issuePIN(t, dir, env, "5")
	if code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN, "user_id": "site-user-5"}); code != 200 || out["outcome"] != "linked" {
		t.Fatalf("link: %d %v", code, out)
	}
	var lines []string
	waitFor(t, in, "the 410 to give the event up", func() bool {
		lines = strings.Split(strings.TrimSpace(cli(t, dir, env, "events", "failed")), "\n")
		return len(lines) == 2
	})
	if !regexp.MustCompile(`^EVENT\s+TYPE\s+USER_ID\s+ATTEMPTS\s+CREATED_AT\s+FAILED_AT\s+LAST_ERROR$`).MatchString(lines[0]) {
		t.Fatalf("header %q", lines[0])
	}
	row := regexp.MustCompile(`^(\d+)\s+link\.created\s+site-user-5\s+1\s+\S+Z\s+\S+Z\s+HTTP 410`).FindStringSubmatch(lines[1])
	if row == nil {
		t.Fatalf("row %q", lines[1])
	}
	id := row[1]
	if m := in.metricsText(); !strings.Contains(m, `pairingd_site_events{state="failed"} 1`+"\n") ||
		!strings.Contains(m, `pairingd_queue_jobs_finished_total{queue="site_events",result="failed"} 1`+"\n") {
		t.Fatalf("/metrics:\n%s", m)
	}

	mu.Lock()
	gone = false
	mu.Unlock()
	if out := cli(t, dir, env, "events", "retry", id); !strings.Contains(out, "site event "+id+" (link.created, user site-user-5) is pending again") {
		t.Fatalf("retry printed %q", out)
	}
	waitFor(t, in, "the retried event to reach the site", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == 1 && delivered[0] == id
	})
	waitFor(t, in, "the delivery to be recorded", func() bool {
		_, stderr, code := cliExit(t, dir, env, "events", "retry", id)
		return code == 1 && strings.Contains(stderr, "site event "+id+" is delivered, not failed")
	})
	if listed := cli(t, dir, env, "events", "failed"); strings.Count(listed, "\n") != 1 {
		t.Fatalf("still listed:\n%s", listed)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"events", "retry", "424242"}, 1, "no site event 424242"},
		{[]string{"events", "retry", "0"}, 2, "not an id"},
		{[]string{"events", "failed", "--limit", "1001"}, 2, "1..1000"},
		{[]string{"events"}, 2, "usage: pairingd events"},
	} {
		stdout, stderr, code := cliExit(t, dir, env, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("pairingd %v: exit %d, stderr %q, stdout %q; want exit %d and %q", c.args, code, stderr, stdout, c.code, c.want)
		}
	}
	in.stop()
}
