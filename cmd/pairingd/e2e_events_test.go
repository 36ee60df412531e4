package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api/sitehook"
	"github.com/pairingd/pairingd/pairing"
)

// TestBinarySiteEvents runs the real binary with a webhook to an in-test
// receiver: a register + link and an unlink reach the site as signed
// link.created then link.deleted (the first POST is refused with 500 and
// retried), and GET /v1/events lists the same two events.
func TestBinarySiteEvents(t *testing.T) {
	const hookSecret = "e2e-webhook-secret-0123456789"
	var mu sync.Mutex
	var got []pairing.EventJSON
	var problems []string
	posts := 0
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts++
		if err := sitehook.Verify([]byte(hookSecret), r.Header.Get("Pairingd-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			problems = append(problems, "signature: "+err.Error())
			w.WriteHeader(400)
			return
		}
		if posts == 1 {
			w.WriteHeader(500) // the site hiccups once: pairingd retries
			return
		}
		var ev pairing.EventJSON
		if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get("Pairingd-Event-Id") == "" {
			problems = append(problems, "bad body: "+string(body))
		}
		got = append(got, ev)
		w.WriteHeader(204)
	}))
	defer rc.Close()

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hook_secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(dir,
		"PAIRINGD_SITE_WEBHOOK_URL="+rc.URL+"/hooks/pairingd?token=url-credential",
		"PAIRINGD_SITE_WEBHOOK_SECRET_FILE="+secretFile,
		"PAIRINGD_JOBS_BACKOFF_MIN=100ms",
		"PAIRINGD_JOBS_BACKOFF_MAX=200ms",
		"PAIRINGD_JOBS_POLL_INTERVAL=100ms",
	)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)

	p := issuePIN(t, dir, env, "42")
	code, body := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN})
	if code != 200 || body["outcome"] != "register" {
		t.Fatalf("authorize: %d %v", code, body)
	}
	code, body = in.call("POST", "/v1/links", key, map[string]any{"grant": body["grant"], "user_id": "site-user-7"})
	if code != 200 || body["outcome"] != "linked" {
		t.Fatalf("links: %d %v", code, body)
	}
	if code, body := in.call("DELETE", "/v1/links/site-user-7", key, nil); code != 200 || body["unlinked"] != true {
		t.Fatalf("delete: %d %v", code, body)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if len(problems) > 0 || len(got) != 2 || posts != 3 {
		t.Fatalf("receiver: problems %v, %d posts, events %+v\n%s", problems, posts, got, in.logs())
	}
	created, deleted := got[0], got[1]
	mu.Unlock()
	if created.Type != "link.created" || deleted.Type != "link.deleted" || created.ID >= deleted.ID ||
		created.UserID == nil || *created.UserID != "site-user-7" || deleted.UserID == nil || *deleted.UserID != "site-user-7" {
		t.Fatalf("events %+v %+v", created, deleted)
	}
	var cd, dd map[string]any
	json.Unmarshal(created.Data, &cd)
	json.Unmarshal(deleted.Data, &dd)
	if cd["by"] != "site" || cd["channel"] != "telegram" || dd["by"] != "site" {
		t.Fatalf("data %v %v", cd, dd)
	}

	// Polling shows the same two events (after they settled).
	var events []any
	for time.Now().Before(deadline) {
		code, body = in.call("GET", "/v1/events", key, nil)
		if code != 200 {
			t.Fatalf("events: %d %v", code, body)
		}
		if events, _ = body["events"].([]any); len(events) == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(events) != 2 {
		t.Fatalf("GET /v1/events: %v", body)
	}
	for i, want := range []pairing.EventJSON{created, deleted} {
		polled, _ := json.Marshal(events[i])
		pushed, _ := json.Marshal(want)
		if !jsonEqual(t, polled, pushed) {
			t.Fatalf("polled %s, pushed %s", polled, pushed)
		}
	}
	if body["next"] != float64(deleted.ID) || body["has_more"] != false {
		t.Fatalf("cursor %v", body)
	}
	if code, _ := in.call("GET", "/v1/events?limit=0", key, nil); code != 400 {
		t.Fatalf("limit=0: %d", code)
	}
	in.stop()
	logs := in.logs()
	for _, secret := range []string{hookSecret, "url-credential", "/hooks/pairingd", key, p.PIN, p.BUID} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "HTTP 500") {
		t.Fatalf("the failed delivery is not logged:\n%s", logs)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatalf("not JSON: %s / %s", a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
