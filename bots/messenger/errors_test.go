package messenger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

// issue creates the lead and a PIN for psid on page A.
func (e *env) issue(psid string) pairing.IssuedPIN {
	e.t.Helper()
	e.clock.Advance(time.Minute) // past the reissue interval
	pin, err := e.svc.IssuePIN(e.ctx, keyA(psid), pairing.Profile{Locale: "en_US"}, pairing.IssueOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pin
}

func TestSendErrorMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		fails         [][2]int
		want          error
		permanent     bool
		blocked       bool
		attempts      int
		textFragments []string
	}{
		{"551 unavailable person", [][2]int{{551, 0}}, ErrBlocked, true, true, 1, []string{"code 551"}},
		{"200/1545041", [][2]int{{200, 1545041}}, ErrBlocked, true, true, 1, nil},
		{"10/2018108", [][2]int{{10, 2018108}}, ErrBlocked, true, true, 1, nil},
		{"outside window", [][2]int{{10, 2018278}}, ErrOutsideWindow, true, false, 1, []string{"outside the 24-hour messaging window", "outside of allowed window"}},
		{"thread owned by another app", [][2]int{{10, 2018300}}, ErrThreadControlled, true, false, 1, []string{"thread controlled by another app"}},
		{"613 then ok", [][2]int{{613, 0}, {613, 0}}, nil, false, false, 3, nil},
		{"4 until retries run out", [][2]int{{4, 0}, {4, 0}, {4, 0}, {4, 0}}, ErrRateLimited, false, false, 4, nil},
		{"bad parameter", [][2]int{{100, 0}}, ErrRejected, true, false, 1, nil},
		{"graph down", [][2]int{{2, 0}}, ErrUnavailable, false, false, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pin := e.issue("5001")
			for _, f := range tc.fails {
				e.fb.FailNext(f[0], f[1])
			}
			before := len(e.fb.Requests())
			err := e.hub.Channel("fb-shop").SendPIN(e.ctx, pin)
			sends := 0
			for _, r := range e.fb.Requests()[before:] {
				if r.Path == "/me/messages" {
					sends++
				}
			}
			if sends != tc.attempts {
				t.Fatalf("send attempts %d, want %d", sends, tc.attempts)
			}
			if tc.want == nil {
				if err != nil || len(e.fb.Sent()) != 1 {
					t.Fatalf("want delivered after retries: %v", err)
				}
				return
			}
			wantErr(t, err, tc.want)
			if IsPermanent(err) != tc.permanent {
				t.Fatalf("permanent = %v", IsPermanent(err))
			}
			var ge *GraphError
			if !errors.As(err, &ge) || ge.TraceID == "" || ge.Type != "OAuthException" {
				t.Fatalf("no GraphError detail: %v", err)
			}
			for _, frag := range tc.textFragments {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q lacks %q", err, frag)
				}
			}
			lead, _ := e.store.LeadByKey(e.ctx, keyA("5001"))
			if lead.Blocked != tc.blocked {
				t.Fatalf("blocked = %v", lead.Blocked)
			}
			if tc.blocked {
				evs := e.store.SiteEvents()
				if evs[len(evs)-1].Type != pairing.EventLeadBlocked {
					t.Fatal("no lead.blocked event")
				}
			}
		})
	}
}

func TestRetryBackoffStopsWithContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pin := e.issue("5001")
	for _, p := range e.hub.pages {
		p.graph.backoff = time.Hour
	}
	e.fb.FailNext(613, 0)
	// The deadline must leave room for the first request (under -race on
	// a loaded machine); the hour of backoff is what it has to cut short.
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	began := time.Now()
	err := e.hub.Channel("fb-shop").SendPIN(ctx, pin)
	if !errors.Is(err, ErrRateLimited) || time.Since(began) > 5*time.Second {
		t.Fatalf("%v after %v", err, time.Since(began))
	}
}

// The site's resend goes through pairing, which wraps the channel error.
func TestResendThroughServiceWrapsChannelError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pin := e.issue("5001")
	e.fb.FailNext(551, 0)
	e.clock.Advance(time.Minute)
	_, err := e.svc.ResendPIN(e.ctx, pin.BUID)
	var ce *pairing.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, pairing.ErrChannelFailed) || !errors.Is(ce.Cause, ErrBlocked) {
		t.Fatalf("resend: %v", err)
	}
	if lead, _ := e.store.LeadByKey(e.ctx, keyA("5001")); !lead.Blocked {
		t.Fatal("lead not blocked")
	}
	// Writing again unblocks.
	e.deliver(fbfake.Text("5001", "m.back", "hi"))
	if lead, _ := e.store.LeadByKey(e.ctx, keyA("5001")); lead.Blocked {
		t.Fatal("still blocked after writing")
	}
}

// In the webhook a permanent failure is not retried by Meta.
func TestPermanentFailureInWebhookIsNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fb.FailNext(10, 2018108)
	if rec := e.post(secretA, fbfake.Delivery(pageA, fbfake.Text("5001", "m.1", "login"))); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if lead, _ := e.store.LeadByKey(e.ctx, keyA("5001")); !lead.Blocked {
		t.Fatal("lead not marked blocked")
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.hub.Health(); err != nil {
		t.Fatal(err)
	}
	pin := e.issue("5001")
	e.fb.FailNext(190, 0)
	_ = e.hub.Channel("fb-shop").SendPIN(e.ctx, pin)
	err := e.hub.Health()
	if err == nil || !strings.Contains(err.Error(), `"fb-shop"`) || !strings.Contains(err.Error(), "code 190") {
		t.Fatalf("health after token refusal: %v", err)
	}
	if err := e.hub.Channel("fb-shop").SendPIN(e.ctx, pin); err != nil {
		t.Fatal(err)
	}
	if err := e.hub.Health(); err != nil {
		t.Fatalf("health after success: %v", err)
	}
	e.fb.FailNext(10, 2018278) // about one person: the Page is fine
	_ = e.hub.Channel("fb-shop").SendPIN(e.ctx, pin)
	if err := e.hub.Health(); err != nil {
		t.Fatal(err)
	}
	e.fb.Close()
	_ = e.hub.Channel("fb-shop").SendPIN(e.ctx, pin)
	if err := e.hub.Health(); err == nil {
		t.Fatal("graph down but healthy")
	}
}
