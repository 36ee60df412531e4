package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(http.MethodGet, "/healthz", "", header{"Authorization", ""})
	if r.status != 200 || r.str("status") != "ok" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var botErr error
	e := newEnv(t, withDeps(func(d *Deps) {
		d.Checks = []Check{{Name: "telegram", Check: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return botErr
		}}}
	}))
	r := e.do(http.MethodGet, "/readyz", "", header{"Authorization", ""})
	checks, _ := r.body["checks"].(map[string]any)
	if r.status != 200 || r.str("status") != "ready" || checks["database"] != "ok" || checks["telegram"] != "ok" {
		t.Fatalf("%d %s", r.status, r.raw)
	}

	mu.Lock()
	botErr = errors.New("getMe: token 123:ABCSECRET rejected")
	mu.Unlock()
	e.store.SetDown(fmt.Errorf("dial postgres://app:hunter2@db: %w", pairing.ErrUnavailable))
	defer e.store.SetDown(nil)
	// Within readyFor the first answer is reused; after it, checked again.
	r = e.do(http.MethodGet, "/readyz", "", header{"Authorization", ""})
	if r.status != 200 {
		t.Fatalf("answer not reused within %s: %d %s", readyFor, r.status, r.raw)
	}
	e.clock.Advance(readyFor)
	r = e.do(http.MethodGet, "/readyz", "", header{"Authorization", ""})
	checks, _ = r.body["checks"].(map[string]any)
	if r.status != 503 || r.str("status") != "unavailable" || checks["database"] != "unavailable" || checks["telegram"] != "unavailable" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if strings.Contains(r.raw, "hunter2") || strings.Contains(r.raw, "SECRET") {
		t.Fatalf("check detail shown: %s", r.raw)
	}
	// With the database down, /v1 answers 503 unavailable.
	expect(t, e.do(http.MethodGet, "/v1/links/u1", ""), http.StatusServiceUnavailable, "unavailable")
}

// A flood of /readyz costs one readiness check (one heartbeat write) per
// readyFor, and /readyz and /metrics are limited per client address.
func TestReadyzChecksOncePerSecondAndIsLimited(t *testing.T) {
	t.Parallel()
	var checks atomic.Int64
	e := newEnv(t,
		withConfig(func(c *Config) { c.PublicRatePerSecond, c.publicBurst = 1, 30 }),
		withDeps(func(d *Deps) {
			d.Checks = []Check{{Name: "database", Check: func(context.Context) error { checks.Add(1); return nil }}}
		}))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if r := e.do(http.MethodGet, "/readyz", ""); r.status != 200 {
				t.Errorf("readyz %d %s", r.status, r.raw)
			}
		})
	}
	wg.Wait()
	if n := checks.Load(); n != 1 {
		t.Fatalf("20 calls within %s ran %d checks", readyFor, n)
	}
	e.clock.Advance(readyFor)
	if r := e.do(http.MethodGet, "/readyz", ""); r.status != 200 || checks.Load() != 2 {
		t.Fatalf("after %s: %d, %d checks", readyFor, r.status, checks.Load())
	}
	limited := 0
	for range 20 {
		if r := e.do(http.MethodGet, "/metrics", ""); r.status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("/metrics is not limited per client address")
	}
	if r := e.do(http.MethodGet, "/readyz", ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("/readyz past the limit: %d", r.status)
	}
}

func TestRunCheckTimesOut(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	err := runCheck(ctx, func(context.Context) error { <-block; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if err := runCheck(context.Background(), func(context.Context) error { panic("x") }); err == nil {
		t.Fatal("panicking check passed")
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(http.MethodGet, "/openapi.yaml", "", header{"Authorization", ""})
	if r.status != 200 || r.raw != string(openAPIYAML) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
}

// Every route is described in openapi.yaml and every operation there is
// served: the spec is the contract.
func TestEveryRouteInSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h, err := New(Config{}, Deps{Service: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, r := range h.Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+echoPattern(path))
		}
	}
	slices.Sort(served)
	slices.Sort(described)
	if !slices.Equal(served, described) {
		t.Fatalf("routes and spec differ:\nserved    %v\ndescribed %v", served, described)
	}
}

// fakeMessenger records its calls and answers what it is told.
type fakeMessenger struct {
	mu    sync.Mutex
	calls []string
	err   error
	res   pairing.Result
}

func (f *fakeMessenger) AccountLinking(_ context.Context, token, redirectURI, userID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "link "+token+" "+redirectURI+" "+userID)
	return redirectURI + "&authorization_code=c1", f.err
}

func (f *fakeMessenger) LinkFacebook(_ context.Context, userID, asid string) (pairing.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "fb "+userID+" "+asid)
	return f.res, f.err
}

func TestMessengerRoutes(t *testing.T) {
	t.Parallel()
	fm := &fakeMessenger{res: pairing.Result{Outcome: pairing.OutcomeLinked, UserID: "u1", PersonID: 9,
		Lead: pairing.Lead{Channel: "fb-shop", Profile: pairing.Profile{FirstName: "Bo"}}}}
	e := newEnv(t, withDeps(func(d *Deps) { d.Messenger = fm }))

	r := e.post("/v1/messenger/account-linking", map[string]string{
		"account_linking_token": "ALT", "redirect_uri": "https://facebook.com/x?state=1", "user_id": "u1"})
	if r.status != 200 || r.str("redirect_uri") != "https://facebook.com/x?state=1&authorization_code=c1" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	r = e.post("/v1/links/facebook", map[string]string{"user_id": "u1", "app_scoped_id": "1234"})
	if r.status != 200 || r.str("outcome") != "linked" || r.str("user_id") != "u1" || r.body["person_id"] != float64(9) || lead(t, r)["channel"] != "fb-shop" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if want := []string{"link ALT https://facebook.com/x?state=1 u1", "fb u1 1234"}; !slices.Equal(fm.calls, want) {
		t.Fatalf("calls %q", fm.calls)
	}

	expect(t, e.post("/v1/links/facebook", map[string]string{"user_id": "u1", "app_scoped_id": "12a"}), 400, "invalid_request")
	expect(t, e.post("/v1/links/facebook", map[string]string{"user_id": "a\nb", "app_scoped_id": "12"}), 400, "invalid_request")
	expect(t, e.post("/v1/messenger/account-linking", map[string]string{"account_linking_token": "x", "user_id": "u1"}), 400, "invalid_request")
	if len(fm.calls) != 2 {
		t.Fatalf("bad requests reached the adapter: %q", fm.calls)
	}

	for _, tc := range []struct {
		err  error
		code string
	}{
		{pairing.ErrTokenUnknown, "token_unknown"},
		{pairing.ErrTokenExpired, "token_expired"},
		{pairing.ErrTokenUsed, "token_used"},
		{&pairing.ConflictError{Conflict: pairing.Conflict{Kind: pairing.ConflictBotLinkedElsewhere, UserID: "u1", LinkedUserID: "u0"}}, "conflict"},
		{&pairing.ChannelError{Err: pairing.ErrChannelFailed, Channel: "fb-shop", Cause: errors.New("graph 500")}, "channel_error"},
		{pairing.ErrNotFound, "not_found"},
	} {
		fm.mu.Lock()
		fm.err = tc.err
		fm.mu.Unlock()
		r := e.post("/v1/links/facebook", map[string]string{"user_id": "u1", "app_scoped_id": "1"})
		status, _, _ := describe(tc.err, t0)
		expect(t, r, status, tc.code)
	}
}

func TestMessengerNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.post("/v1/messenger/account-linking", map[string]string{"account_linking_token": "x", "redirect_uri": "https://x", "user_id": "u1"})
	expect(t, r, http.StatusNotFound, "not_found")
	if r.errField("message") != "messenger channel not configured" {
		t.Fatalf("message %v", r.errField("message"))
	}
	expect(t, e.post("/v1/links/facebook", map[string]string{"user_id": "u1", "app_scoped_id": "1"}), http.StatusNotFound, "not_found")
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	e := newEnv(t,
		withConfig(func(c *Config) { c.publicBurst, c.webhookBodyLimit = 2, 100 }),
		withDeps(func(d *Deps) {
			d.Webhooks = []Webhook{{Method: "POST", Path: "/webhooks/telegram/:secret", Handler: hook}}
		}))

	noKey := header{"Authorization", ""}
	r := e.do(http.MethodPost, "/webhooks/telegram/s1", `{"update_id":1}`, noKey)
	if r.status != 200 || r.raw != "ok" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	r = e.do(http.MethodPost, "/webhooks/telegram/s1", strings.Repeat("x", 200), noKey)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("big webhook body: %d", r.status)
	}
	r = e.do(http.MethodPost, "/webhooks/telegram/s1", `{}`, noKey)
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if len(bodies) != 1 || bodies[0] != `{"update_id":1}` {
		t.Fatalf("bodies %q", bodies)
	}
	if ips := requestIPs(t, e.logs.String()); len(ips) != 3 {
		t.Fatalf("request lines %v", ips)
	}
	if strings.Contains(e.logs.String(), "/webhooks/telegram/s1") {
		t.Fatal("raw webhook path (with its secret) logged")
	}
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := http.NotFoundHandler()
	for _, hooks := range [][]Webhook{
		{{Method: "POST", Path: "/v1/hook", Handler: h}},
		{{Method: "GET", Path: "/healthz", Handler: h}},
		{{Method: "POST", Path: "relative", Handler: h}},
		{{Method: "POST", Path: "/hook"}},
		{{Method: "POST", Path: "/hook", Handler: h}, {Method: "POST", Path: "/hook", Handler: h}},
	} {
		if _, err := New(Config{}, Deps{Service: e.svc, Webhooks: hooks}); err == nil {
			t.Errorf("accepted %+v", hooks)
		}
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("accepted no service")
	}
}

// The error table gives every domain error its status and code, and its
// typed detail; anything unknown is a generic 500.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	now := t0
	for _, tc := range []struct {
		err    error
		status int
		code   string
		check  func(errorDetail) bool
	}{
		{&pairing.FieldError{Field: "pin", Reason: "must be exactly 6 digits"}, 400, "invalid_request",
			func(d errorDetail) bool { return d.Fields["pin"] == "must be exactly 6 digits" }},
		{pairing.ErrInvalid, 400, "invalid_request", nil},
		{pairing.ErrBUIDUnknown, 404, "buid_unknown", nil},
		{&pairing.AttemptsError{Err: pairing.ErrPINInvalid, AttemptsLeft: 2}, 422, "pin_invalid",
			func(d errorDetail) bool { return d.AttemptsLeft != nil && *d.AttemptsLeft == 2 }},
		{&pairing.AttemptsError{Err: pairing.ErrPINLocked, LockedUntil: now.Add(90 * time.Second)}, 423, "pin_locked",
			func(d errorDetail) bool { return d.RetryAfter == 90 && d.AttemptsLeft == nil }},
		{&pairing.RetryError{Err: pairing.ErrPINLocked, RetryAfter: 1500 * time.Millisecond}, 423, "pin_locked",
			func(d errorDetail) bool { return d.RetryAfter == 2 }},
		{pairing.ErrPINExpired, 422, "pin_expired", nil},
		{pairing.ErrPINUsed, 422, "pin_used", nil},
		{&pairing.RetryError{Err: pairing.ErrRateLimited, RetryAfter: time.Minute}, 429, "rate_limited",
			func(d errorDetail) bool { return d.RetryAfter == 60 }},
		{pairing.ErrRateLimited, 429, "rate_limited", func(d errorDetail) bool { return d.RetryAfter == 1 }},
		{pairing.ErrGrantUnknown, 404, "grant_unknown", nil},
		{pairing.ErrGrantExpired, 422, "grant_expired", nil},
		{pairing.ErrGrantUsed, 422, "grant_used", nil},
		{pairing.ErrGrantMismatch, 422, "grant_mismatch", nil},
		{fmt.Errorf("link kept racing: %w", pairing.ErrConflict), 409, "conflict", func(d errorDetail) bool { return d.Conflict == nil }},
		{&pairing.ConflictError{Conflict: pairing.Conflict{Kind: pairing.ConflictUserLinkedElsewhere, UserID: "u"}}, 409, "conflict",
			func(d errorDetail) bool {
				return d.Conflict != nil && d.Conflict.Kind == "user_linked_elsewhere" && d.Conflict.UserID == "u"
			}},
		{pairing.ErrNotLinked, 404, "not_linked", nil},
		{pairing.ErrNotFound, 404, "not_found", nil},
		{&pairing.ChannelError{Err: pairing.ErrChannelUnavailable, Channel: "telegram"}, 409, "channel_unavailable",
			func(d errorDetail) bool { return d.Channel == "telegram" }},
		{&pairing.ChannelError{Err: pairing.ErrChannelFailed, Channel: "t", Cause: errors.New("secret cause")}, 502, "channel_error",
			func(d errorDetail) bool { return !strings.Contains(d.Message, "secret") }},
		{pairing.ErrTokenUnknown, 404, "token_unknown", nil},
		{pairing.ErrTokenExpired, 422, "token_expired", nil},
		{pairing.ErrTokenUsed, 422, "token_used", nil},
		{pairing.ErrUnauthorized, 401, "unauthorized", nil},
		{fmt.Errorf("ping: %w", pairing.ErrUnavailable), 503, "unavailable", nil},
		{errTooLarge, 413, "payload_too_large", nil},
		{&http.MaxBytesError{Limit: 1}, 413, "payload_too_large", nil},
		{errMediaType, 415, "unsupported_media_type", nil},
		{echo.ErrNotFound, 404, "not_found", nil},
		{echo.ErrMethodNotAllowed, 405, "method_not_allowed", nil},
		{echo.ErrInternalServerError, 500, "internal", nil},
		{context.DeadlineExceeded, 503, "unavailable", nil},
		{errors.New("sql: password=hunter2"), 500, "internal", func(d errorDetail) bool { return !strings.Contains(d.Message, "hunter2") }},
	} {
		status, d, _ := describe(tc.err, now)
		if status != tc.status || d.Code != tc.code || d.Message == "" || (tc.check != nil && !tc.check(d)) {
			t.Errorf("%v: got %d %+v, want %d %s", tc.err, status, d, tc.status, tc.code)
		}
	}
}
