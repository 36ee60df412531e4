package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

func TestCompleteLinkAfterRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	reg := e.authorize(p, "")
	grant := reg.str("grant")
	r := e.post("/v1/links", map[string]any{"grant": grant, "user_id": "site/7"})
	expect(t, r, http.StatusOK, "")
	if r.str("outcome") != "linked" || r.str("user_id") != "site/7" || r.body["person_id"] != float64(p.Lead.PersonID) {
		t.Fatalf("want linked site/7: %s", r.raw)
	}
	if lead(t, r)["channel"] != "telegram" {
		t.Errorf("lead %s", r.raw)
	}
	expect(t, e.post("/v1/links", map[string]any{"grant": grant, "user_id": "site/7"}), http.StatusUnprocessableEntity, "grant_used")
	expect(t, e.post("/v1/links", map[string]any{"grant": "pgr_nope", "user_id": "x"}), http.StatusNotFound, "grant_unknown")
}

func TestCompleteLinkGrantExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	grant := e.authorize(e.issue(), "").str("grant")
	e.clock.Advance(11 * time.Minute)
	expect(t, e.post("/v1/links", map[string]any{"grant": grant, "user_id": "u1"}), http.StatusUnprocessableEntity, "grant_expired")
}

func TestCompleteLinkConflictThenReplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.authorize(e.issueFor("42"), "u1")
	conf := e.authorize(e.issueFor("42"), "u2")
	grant := conf.str("grant")

	// Another user id than the conflict was about: refused, grant kept.
	expect(t, e.post("/v1/links", map[string]any{"grant": grant, "user_id": "u3"}), http.StatusUnprocessableEntity, "grant_mismatch")

	// Without replace: 409 with the conflict, grant kept.
	r := e.post("/v1/links", map[string]any{"grant": grant, "user_id": "u2"})
	expect(t, r, http.StatusConflict, "conflict")
	c, _ := r.errField("conflict").(map[string]any)
	if c["kind"] != "bot_linked_elsewhere" || c["user_id"] != "u2" || c["linked_user_id"] != "u1" {
		t.Fatalf("conflict detail %s", r.raw)
	}

	r = e.post("/v1/links", map[string]any{"grant": grant, "user_id": "u2", "replace": true})
	expect(t, r, http.StatusOK, "")
	if r.str("outcome") != "linked" || r.str("user_id") != "u2" || r.str("replaced_user_id") != "u1" {
		t.Fatalf("want linked u2 replacing u1: %s", r.raw)
	}
	expect(t, e.do(http.MethodGet, "/v1/links/u1", ""), http.StatusNotFound, "not_linked")
	expect(t, e.do(http.MethodGet, "/v1/links/u2", ""), http.StatusOK, "")
}

func TestGetAndDeleteLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := "team/ä 1?x"
	p := e.link(id)
	path := "/v1/links/" + url.PathEscape(id)

	r := e.do(http.MethodGet, path, "")
	expect(t, r, http.StatusOK, "")
	if r.str("user_id") != id || r.body["person_id"] != float64(p.Lead.PersonID) || r.str("linked_at") != t0.Format(time.RFC3339) {
		t.Fatalf("link %s", r.raw)
	}
	leads, _ := r.body["leads"].([]any)
	if len(leads) != 1 {
		t.Fatalf("leads %s", r.raw)
	}
	l := leads[0].(map[string]any)
	if l["channel"] != "telegram" || l["first_name"] != "Ann" || l["blocked"] != false {
		t.Fatalf("lead %v", l)
	}

	r = e.do(http.MethodDelete, path, "")
	if r.status != http.StatusOK || r.body["unlinked"] != true {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	r = e.do(http.MethodDelete, path, "")
	if r.status != http.StatusOK || r.body["unlinked"] != false {
		t.Fatalf("second delete: %d %s", r.status, r.raw)
	}
	expect(t, e.do(http.MethodGet, path, ""), http.StatusNotFound, "not_linked")
	if ev := e.store.SiteEvents(); ev[len(ev)-1].Type != pairing.EventLinkDeleted || !strings.Contains(string(ev[len(ev)-1].Payload), `"by":"site"`) {
		t.Errorf("last site event %+v", ev[len(ev)-1])
	}
}

// User ids with characters that need escaping, or that look escaped,
// reach the service as the site sent them.
func TestLinkPathEscaping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"50%", "a+b", "%2F", "x y", "ü", "a;b=c", "..", "a%2Fb"} {
		e.link(id)
		r := e.do(http.MethodGet, "/v1/links/"+url.PathEscape(id), "")
		if r.status != http.StatusOK || r.str("user_id") != id {
			t.Errorf("%q: %d %s", id, r.status, r.raw)
		}
	}
}

// A site user called "facebook" is not swallowed by POST /v1/links/facebook.
func TestLinkNamedLikeAStaticRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.link("facebook")
	r := e.do(http.MethodGet, "/v1/links/facebook", "")
	expect(t, r, http.StatusOK, "")
	if r.str("user_id") != "facebook" {
		t.Fatalf("got %s", r.raw)
	}
}

// fakeChannel records the PINs it was asked to send.
type fakeChannel struct {
	mu   sync.Mutex
	sent []pairing.IssuedPIN
	err  error
}

func (f *fakeChannel) SendPIN(_ context.Context, p pairing.IssuedPIN) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, p)
	return nil
}

func TestResendPIN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()

	// No channel registered under the lead's channel name.
	r := e.post("/v1/pins/resend", map[string]string{"buid": p.BUID})
	expect(t, r, http.StatusConflict, "channel_unavailable")
	if r.errField("channel") != "telegram" {
		t.Errorf("channel %v", r.errField("channel"))
	}

	ch := &fakeChannel{}
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", PINs: ch})
	e.clock.Advance(time.Minute) // past the resend interval of the issue
	r = e.post("/v1/pins/resend", map[string]string{"buid": p.BUID})
	expect(t, r, http.StatusAccepted, "")
	if r.str("channel") != "telegram" || r.str("expires_at") != t0.Add(11*time.Minute).Format(time.RFC3339) {
		t.Fatalf("resend answer %s", r.raw)
	}
	if strings.Contains(r.raw, p.PIN) || strings.Contains(r.raw, "buid") {
		t.Fatalf("resend answer leaks a credential: %s", r.raw)
	}
	if len(ch.sent) != 1 || ch.sent[0].Lead.ID != p.Lead.ID || len(ch.sent[0].PIN) != 6 {
		t.Fatalf("channel got %+v", ch.sent)
	}
	// The new credential works.
	expect(t, e.authorize(ch.sent[0], ""), http.StatusOK, "")

	// A second resend within the minute, on the new BUID: limited.
	r = e.post("/v1/pins/resend", map[string]string{"buid": ch.sent[0].BUID})
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	expect(t, e.post("/v1/pins/resend", map[string]string{"buid": "nope"}), http.StatusNotFound, "buid_unknown")
}

func TestResendPINChannelFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", PINs: &fakeChannel{err: errors.New("telegram said 500 for bot token 123:SECRET")}})
	e.clock.Advance(time.Minute)
	r := e.post("/v1/pins/resend", map[string]string{"buid": p.BUID})
	expect(t, r, http.StatusBadGateway, "channel_error")
	if strings.Contains(r.raw, "SECRET") {
		t.Fatalf("channel cause shown to the client: %s", r.raw)
	}
	if !strings.Contains(e.logs.String(), "telegram said 500") {
		t.Error("channel cause not logged")
	}
}
