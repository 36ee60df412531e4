package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/store/storetest"
)

var pinRE = regexp.MustCompile(`\b(\d{6})\b`)
var buidRE = regexp.MustCompile(`buid=([A-Za-z0-9]+)`)

// TestBinaryMessengerLoginThenAuthorize runs the real binary with a
// Messenger channel pointed at the fake Graph API: a signed "login"
// message gets a PIN message, and that PIN registers then matches.
func TestBinaryMessengerLoginThenAuthorize(t *testing.T) {
	fb := fbfake.New(t)
	const pageID, token, secret = "1001", "page-token-xyz", "app-secret-abc"
	fb.AddPage(pageID, token, secret)
	dir := t.TempDir()
	env := baseEnv(dir,
		"PAIRINGD_CHANNELS_0_NAME=fb-shop",
		"PAIRINGD_CHANNELS_0_TYPE=messenger",
		"PAIRINGD_CHANNELS_0_LINK_NOTICES=false", // link notices have their own tests (e2e_botfirst_test.go)
		"PAIRINGD_CHANNELS_0_PAGE_ID="+pageID,
		"PAIRINGD_CHANNELS_0_PAGE_ACCESS_TOKEN="+token,
		"PAIRINGD_CHANNELS_0_APP_ID=42",
		"PAIRINGD_CHANNELS_0_APP_SECRET="+secret,
		"PAIRINGD_CHANNELS_0_VERIFY_TOKEN=verify-me",
		"PAIRINGD_CHANNELS_0_GRAPH_URL="+fb.URL(),
		"PAIRINGD_PAIRING_REISSUE_INTERVAL=1s",
	)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)

	// Meta's subscription check.
	res, err := http.Get(in.base + "/webhooks/messenger?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=12345")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(res); res.StatusCode != 200 || b != "12345" {
		t.Fatalf("verify: %d %q", res.StatusCode, b)
	}

	deliver := func(body []byte, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, in.base+"/webhooks/messenger", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", sig)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	body := fbfake.Body(fbfake.Entry{PageID: pageID, Messaging: []map[string]any{fbfake.Text("7001", "m1", "login")}})
	if code := deliver(body, fbfake.Sign("wrong", body)); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("bad signature accepted: %d", code)
	}
	if code := deliver(body, fbfake.Sign(secret, body)); code != 200 {
		t.Fatalf("delivery: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// pinFrom reads the PIN and BUID of the n-th message the fake Send API
	// received.
	pinFrom := func(n int) (pin, buid string) {
		t.Helper()
		sent, err := fb.WaitSent(ctx, n)
		if err != nil {
			t.Fatalf("no PIN message: %v\n%s", err, in.logs())
		}
		m := sent[n-1]
		if p := pinRE.FindStringSubmatch(m.Text); p != nil {
			pin = p[1]
		}
		for _, b := range m.Buttons {
			if u := buidRE.FindStringSubmatch(b.URL); u != nil {
				buid = u[1]
			}
		}
		if pin == "" || buid == "" {
			t.Fatalf("PIN message without PIN or link: %+v", m)
		}
		return pin, buid
	}
	pin, buid := pinFrom(1)
	// Nobody logged in on the site: register, then the site spends the grant.
	code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": buid, "pin": pin})
	if code != 200 || out["outcome"] != "register" {
		t.Fatalf("authorize: %d %v", code, out)
	}
	grant, _ := out["grant"].(string)
	code, out = in.call("POST", "/v1/links", key, map[string]any{"grant": grant, "user_id": "u-fb"})
	if code != 200 || out["outcome"] != "linked" {
		t.Fatalf("link: %d %v", code, out)
	}
	code, out = in.call("GET", "/v1/links/u-fb", key, nil)
	if code != 200 || !strings.Contains(toJSON(out), `"channel":"fb-shop"`) {
		t.Fatalf("link: %d %v", code, out)
	}
	// The next "login" (after the reissue interval) answers match.
	time.Sleep(1100 * time.Millisecond)
	body = fbfake.Body(fbfake.Entry{PageID: pageID, Messaging: []map[string]any{fbfake.Text("7001", "m2", "login")}})
	if code := deliver(body, fbfake.Sign(secret, body)); code != 200 {
		t.Fatalf("delivery: %d", code)
	}
	pin2, buid2 := pinFrom(2)
	if buid2 == buid {
		t.Fatal("a new PIN kept the old BUID")
	}
	code, out = in.call("POST", "/v1/authorize", key, map[string]any{"buid": buid2, "pin": pin2})
	if code != 200 || out["outcome"] != "match" || out["user_id"] != "u-fb" {
		t.Fatalf("authorize after link: %d %v", code, out)
	}
	in.stop()
	for _, s := range []string{token, secret, pin, buid, grant, pin2} {
		if strings.Contains(in.logs(), s) {
			t.Fatalf("secret %q in logs:\n%s", s, in.logs())
		}
	}
}

// TestBinaryInstancesSharePostgres runs two instances on one PostgreSQL
// database: a PIN is spent by exactly one of many requests spread over
// both, and a key created through one works on the other.
func TestBinaryInstancesSharePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dir := t.TempDir()
	env := baseEnv(dir, "PAIRINGD_DATABASE_DRIVER=postgres", "PAIRINGD_DATABASE_DSN="+dsn)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	a, b := start(t, dir, env), start(t, dir, env)
	for round := range 3 {
		p := issuePIN(t, dir, env, "pg-"+string(rune('a'+round)))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 40 {
			in := a
			if i%2 == 1 {
				in = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN, "user_id": "pg-user"})
				switch {
				case code == 200:
					wins.Add(1)
				case code == 422 && errCode(out) == "pin_used":
				default:
					t.Errorf("unexpected answer %d %v", code, out)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d requests spent one PIN", round, wins.Load())
		}
	}
	a.stop()
	b.stop()
}

func readAll(res *http.Response) string {
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return b.String()
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
