package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
)

// badPlatform answers every Bot API and Graph API call badly: slowly
// (10 s, or until the caller gives up), with a 5xx, or with a 429.
func badPlatform(t *testing.T, mode string) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch mode {
		case "slow":
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
				return
			}
			w.Write([]byte(`{"ok":true,"result":[]}`))
		case "5xx":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"ok":false,"error_code":502,"description":"Bad Gateway"}`))
		case "429":
			w.WriteHeader(http.StatusTooManyRequests)
			if strings.Contains(r.URL.Path, "/bot") {
				w.Write([]byte(`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`))
				return
			}
			w.Write([]byte(`{"error":{"message":"Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613}}`))
		}
	}))
	t.Cleanup(srv.CloseClientConnections)
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestBinaryPlatformFaults: with the Telegram Bot API and the Graph API
// slow, failing or rate limiting, the REST API answers as fast as ever,
// Messenger webhooks are still acknowledged at once, the channels keep
// retrying, and SIGTERM still stops the binary within its grace period.
func TestBinaryPlatformFaults(t *testing.T) {
	for _, mode := range []string{"slow", "5xx", "429"} {
		t.Run(mode, func(t *testing.T) {
			bad, calls := badPlatform(t, mode)
			const secret = "fault-app-secret"
			dir := t.TempDir()
			env := baseEnv(dir,
				"PAIRINGD_CHANNELS_0_NAME=telegram",
				"PAIRINGD_CHANNELS_0_TYPE=telegram",
				"PAIRINGD_CHANNELS_0_LINK_NOTICES=false", // link notices have their own tests (e2e_botfirst_test.go)
				"PAIRINGD_CHANNELS_0_TOKEN=123:fault-token",
				"PAIRINGD_CHANNELS_0_API_ENDPOINT="+bad.URL+"/bot%s/%s",
				"PAIRINGD_CHANNELS_0_POLL_TIMEOUT=1s",
				"PAIRINGD_CHANNELS_1_NAME=fb-shop",
				"PAIRINGD_CHANNELS_1_TYPE=messenger",
				"PAIRINGD_CHANNELS_1_LINK_NOTICES=false", // link notices have their own tests (e2e_botfirst_test.go)
				"PAIRINGD_CHANNELS_1_PAGE_ID=2002",
				"PAIRINGD_CHANNELS_1_PAGE_ACCESS_TOKEN=fault-page-token",
				"PAIRINGD_CHANNELS_1_APP_ID=42",
				"PAIRINGD_CHANNELS_1_APP_SECRET="+secret,
				"PAIRINGD_CHANNELS_1_VERIFY_TOKEN=verify",
				"PAIRINGD_CHANNELS_1_GRAPH_URL="+bad.URL+"/v21.0",
			)
			key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
			in := start(t, dir, env)

			// REST latency: pairing through the API does not wait for the
			// platforms.
			var lat []time.Duration
			for i := range 20 {
				p := issuePIN(t, dir, env, fmt.Sprint("f-", mode, i))
				begin := time.Now()
				code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN, "user_id": fmt.Sprint("fu-", i)})
				lat = append(lat, time.Since(begin))
				if code != 200 || out["outcome"] != "linked" {
					t.Fatalf("authorize: %d %v", code, out)
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if worst := lat[len(lat)-1]; worst > 2*time.Second {
				t.Fatalf("authorize took up to %v with the platforms %s", worst, mode)
			}

			// A Messenger webhook is acknowledged at once; sending the
			// answer is the platform's problem.
			body := fbfake.Body(fbfake.Entry{PageID: "2002", Messaging: []map[string]any{fbfake.Text("9001", "m-"+mode, "login")}})
			req, _ := http.NewRequest(http.MethodPost, in.base+"/webhooks/messenger", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", fbfake.Sign(secret, body))
			begin := time.Now()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || time.Since(begin) > 2*time.Second {
				t.Fatalf("webhook: %d after %v", res.StatusCode, time.Since(begin))
			}

			// The channels keep trying.
			deadline := time.Now().Add(20 * time.Second)
			for calls.Load() < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("the channels stopped calling the platform (%d calls)", calls.Load())
				}
				time.Sleep(50 * time.Millisecond)
			}
			code, out := in.call("GET", "/readyz", "", nil)
			if code != 200 {
				t.Fatalf("readyz must stay ready (the database is fine): %d %v", code, out)
			}

			begin = time.Now()
			in.stop() // fails the test unless it exits cleanly within 15 s
			t.Logf("%s: authorize p50 %v max %v; %d platform calls; shutdown %v", mode, lat[len(lat)/2], lat[len(lat)-1], calls.Load(), time.Since(begin))
			for _, s := range []string{"fault-token", "fault-page-token", secret} {
				if strings.Contains(in.logs(), s) {
					t.Fatalf("secret %q in logs", s)
				}
			}
		})
	}
}
