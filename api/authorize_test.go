package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func wrongPIN(pin string) string {
	b := []byte(pin)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func lead(t *testing.T, r resp) map[string]any {
	t.Helper()
	l, ok := r.body["lead"].(map[string]any)
	if !ok {
		t.Fatalf("no lead in %s", r.raw)
	}
	return l
}

func TestAuthorizeRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.authorize(e.issue(), "")
	expect(t, r, http.StatusOK, "")
	if r.str("outcome") != "register" || !strings.HasPrefix(r.str("grant"), "pgr_") {
		t.Fatalf("want register with grant: %s", r.raw)
	}
	if got, want := r.str("grant_expires_at"), t0.Add(10*time.Minute).Format(time.RFC3339); got != want {
		t.Errorf("grant_expires_at %q, want %q", got, want)
	}
	if _, ok := r.body["user_id"]; ok {
		t.Errorf("register has a user_id: %s", r.raw)
	}
	l := lead(t, r)
	if l["channel"] != "telegram" || l["first_name"] != "Ann" || l["username"] != "ann" || l["locale"] != "en" || l["last_name"] != "" {
		t.Errorf("lead %v", l)
	}
	// The calling key is passed on, for the audit trail and failure budget.
	keys, err := e.svc.ListAPIKeys(e.ctx)
	if err != nil || len(keys) != 1 {
		t.Fatal(keys, err)
	}
	audit := e.store.Audit()
	if last := audit[len(audit)-1]; last.Action != "authorize" || last.Outcome != "register" || last.KeyID != keys[0].ID {
		t.Errorf("audit %+v", last)
	}
}

func TestAuthorizeLinkedMatchAlreadyLinked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issueFor("42")
	r := e.authorize(p, "u1")
	expect(t, r, http.StatusOK, "")
	if r.str("outcome") != "linked" || r.str("user_id") != "u1" || r.body["person_id"] != float64(p.Lead.PersonID) {
		t.Fatalf("want linked u1: %s", r.raw)
	}
	if _, ok := r.body["grant"]; ok {
		t.Errorf("linked carries a grant: %s", r.raw)
	}

	r = e.authorize(e.issueFor("42"), "")
	if r.status != http.StatusOK || r.str("outcome") != "match" || r.str("user_id") != "u1" {
		t.Fatalf("want match u1: %d %s", r.status, r.raw)
	}
	r = e.authorize(e.issueFor("42"), "u1")
	if r.status != http.StatusOK || r.str("outcome") != "already_linked" || r.str("user_id") != "u1" {
		t.Fatalf("want already_linked u1: %d %s", r.status, r.raw)
	}
}

func TestAuthorizeConflictBotLinkedElsewhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.authorize(e.issueFor("42"), "u1")
	r := e.authorize(e.issueFor("42"), "u2")
	expect(t, r, http.StatusOK, "")
	c, _ := r.body["conflict"].(map[string]any)
	if r.str("outcome") != "conflict" || c["kind"] != "bot_linked_elsewhere" || c["user_id"] != "u2" || c["linked_user_id"] != "u1" {
		t.Fatalf("want bot_linked_elsewhere: %s", r.raw)
	}
	if !strings.HasPrefix(r.str("grant"), "pgr_") || r.str("grant_expires_at") == "" {
		t.Fatalf("conflict without grant: %s", r.raw)
	}
	if _, ok := r.body["user_id"]; ok {
		t.Errorf("conflict has a top-level user_id: %s", r.raw)
	}
}

func TestAuthorizeConflictUserLinkedElsewhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.authorize(e.issueFor("a"), "u1")
	r := e.authorize(e.issueFor("b"), "u1")
	c, _ := r.body["conflict"].(map[string]any)
	if r.status != http.StatusOK || r.str("outcome") != "conflict" || c["kind"] != "user_linked_elsewhere" || c["user_id"] != "u1" {
		t.Fatalf("want user_linked_elsewhere: %d %s", r.status, r.raw)
	}
	if _, ok := c["linked_user_id"]; ok {
		t.Errorf("user_linked_elsewhere names a linked_user_id: %s", r.raw)
	}
}

func TestAuthorizePINInvalidThenLocked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	bad := p
	bad.PIN = wrongPIN(p.PIN)
	for left := 4; left >= 0; left-- {
		r := e.authorize(bad, "")
		expect(t, r, http.StatusUnprocessableEntity, "pin_invalid")
		if r.errField("attempts_left") != float64(left) {
			t.Fatalf("attempts_left %v, want %d", r.errField("attempts_left"), left)
		}
	}
	// Locked now: even the right PIN is refused, with when to come back.
	r := e.authorize(p, "")
	expect(t, r, http.StatusLocked, "pin_locked")
	if r.errField("retry_after") != float64(15*60) || r.header.Get("Retry-After") != "900" {
		t.Fatalf("retry_after %v, Retry-After %q", r.errField("retry_after"), r.header.Get("Retry-After"))
	}
	e.clock.Advance(5 * time.Minute)
	r = e.authorize(p, "")
	expect(t, r, http.StatusLocked, "pin_locked")
	if r.header.Get("Retry-After") != "600" {
		t.Fatalf("Retry-After %q after 5 min, want 600", r.header.Get("Retry-After"))
	}
}

func TestAuthorizePINExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	e.clock.Advance(10*time.Minute + time.Second)
	expect(t, e.authorize(p, ""), http.StatusUnprocessableEntity, "pin_expired")
}

func TestAuthorizePINUsed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	expect(t, e.authorize(p, ""), http.StatusOK, "")
	expect(t, e.authorize(p, ""), http.StatusUnprocessableEntity, "pin_used")
}

func TestAuthorizeBUIDUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	for _, buid := range []string{"abc", p.BUID + "x", strings.ToUpper(p.BUID)} {
		r := e.post("/v1/authorize", map[string]string{"buid": buid, "pin": p.PIN})
		expect(t, r, http.StatusNotFound, "buid_unknown")
	}
	expect(t, e.authorize(p, ""), http.StatusOK, "")
}

func TestAuthorizeInvalidRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	before := e.snap(p)
	r := e.post("/v1/authorize", map[string]string{"buid": p.BUID, "pin": "12"})
	expect(t, r, http.StatusBadRequest, "invalid_request")
	if f, _ := r.errField("fields").(map[string]any); f["pin"] != "must be exactly 6 digits" {
		t.Fatalf("fields %v", r.errField("fields"))
	}
	r = e.post("/v1/authorize", map[string]string{"pin": p.PIN})
	expect(t, r, http.StatusBadRequest, "invalid_request")
	if f, _ := r.errField("fields").(map[string]any); f["buid"] != "is required" {
		t.Fatalf("fields %v", r.errField("fields"))
	}
	e.unchanged(before, p, false)
}

func TestAuthorizeUnauthorized(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	before := e.snap(p)
	revoked, revokedSecret, err := e.svc.CreateAPIKey(e.ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RevokeAPIKey(e.ctx, revoked.Name); err != nil {
		t.Fatal(err)
	}
	body := `{"buid":"` + p.BUID + `","pin":"` + p.PIN + `"}`
	for name, auth := range map[string]string{
		"missing":   "",
		"wrong":     "Bearer pdk_" + strings.Repeat("A", 43),
		"revoked":   "Bearer " + revokedSecret,
		"basic":     "Basic " + e.key,
		"no scheme": e.key,
	} {
		r := e.do(http.MethodPost, "/v1/authorize", body, header{"Authorization", auth})
		expect(t, r, http.StatusUnauthorized, "unauthorized")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", name, r.header.Get("WWW-Authenticate"))
		}
	}
	e.unchanged(before, p, false)
	// The scheme is case-insensitive.
	expect(t, e.do(http.MethodPost, "/v1/authorize", body, header{"Authorization", "bearer " + e.key}), http.StatusOK, "")
}

func TestAuthorizeKeyFailureBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPairing(func(c *pairing.Config) { c.KeyFailureBudget = 3 }))
	p := e.issue()
	for range 3 {
		expect(t, e.post("/v1/authorize", map[string]string{"buid": "nope", "pin": "123456"}), http.StatusNotFound, "buid_unknown")
	}
	r := e.authorize(p, "")
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") != "600" || r.errField("retry_after") != float64(600) {
		t.Fatalf("Retry-After %q retry_after %v", r.header.Get("Retry-After"), r.errField("retry_after"))
	}
	// The refusal spent nothing: after the window the PIN still works.
	e.clock.Advance(9 * time.Minute)
	p2 := e.issueFor(p.Lead.ExternalID) // the first PIN expired meanwhile
	e.clock.Advance(2 * time.Minute)
	expect(t, e.authorize(p2, ""), http.StatusOK, "")
}

func TestAuthorizeMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.authorize(e.issue(), "")
	e.post("/v1/authorize", map[string]string{"buid": "nope", "pin": "123456"})
	r := e.do(http.MethodGet, "/metrics", "")
	for _, want := range []string{
		`pairingd_authorize_outcomes_total{outcome="register"} 1`,
		`pairingd_authorize_outcomes_total{outcome="buid_unknown"} 1`,
		`pairingd_http_requests_total{method="POST",route="/v1/authorize",status="200"} 1`,
		`pairingd_http_requests_total{method="POST",route="/v1/authorize",status="404"} 1`,
		"# TYPE pairingd_http_requests_total counter",
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("metrics lack %q:\n%s", want, r.raw)
		}
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
}
