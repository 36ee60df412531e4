package pairing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

type fakeChannel struct {
	sent []pairing.IssuedPIN
	err  error
}

func (f *fakeChannel) SendPIN(_ context.Context, p pairing.IssuedPIN) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, p)
	return nil
}

func TestReissueLimitForBots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := pairing.LeadKey{Channel: "telegram", ExternalID: "1"}
	if _, err := e.svc.IssuePIN(e.ctx, key, pairing.Profile{}, pairing.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.IssuePIN(e.ctx, key, pairing.Profile{}, pairing.IssueOptions{})
	var re *pairing.RetryError
	if !errors.As(err, &re) || !errors.Is(err, pairing.ErrRateLimited) || re.RetryAfter != 10*time.Second {
		t.Fatalf("want rate limit, got %v", err)
	}
	e.clock.Advance(10 * time.Second)
	if _, err := e.svc.IssuePIN(e.ctx, key, pairing.Profile{}, pairing.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestResendPIN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue("1")
	_, err := e.svc.ResendPIN(e.ctx, p.BUID)
	if !errors.Is(err, pairing.ErrChannelUnavailable) {
		t.Fatalf("no channel: %v", err)
	}
	ch := &fakeChannel{}
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", PINs: ch})
	if _, err := e.svc.ResendPIN(e.ctx, "nope"); !errors.Is(err, pairing.ErrBUIDUnknown) {
		t.Fatalf("bad buid: %v", err)
	}
	e.clock.Advance(time.Minute)
	got, err := e.svc.ResendPIN(e.ctx, p.BUID)
	if err != nil || len(ch.sent) != 1 || ch.sent[0].PIN != got.PIN || ch.sent[0].Lead.ExternalID != "1" {
		t.Fatalf("resend: %v %+v", err, ch.sent)
	}
	if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrBUIDUnknown) {
		t.Fatalf("old BUID still works: %v", err)
	}
	if _, err := e.svc.ResendPIN(e.ctx, got.BUID); !errors.Is(err, pairing.ErrRateLimited) {
		t.Fatalf("second resend within a minute: %v", err)
	}
	e.clock.Advance(time.Minute)
	ch.err = errors.New("boom")
	if _, err := e.svc.ResendPIN(e.ctx, got.BUID); !errors.Is(err, pairing.ErrChannelFailed) {
		t.Fatalf("send failure: %v", err)
	}
}

func TestUnlinkBothSides(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.link("1", "u1")
	key := pairing.LeadKey{Channel: "telegram", ExternalID: "1"}
	if st, _ := e.svc.Status(e.ctx, key); !st.Linked || st.UserID != "u1" {
		t.Fatalf("status %+v", st)
	}
	u, err := e.svc.UnlinkLead(e.ctx, key, pairing.ActorBot)
	if err != nil || u != "u1" {
		t.Fatalf("unlink lead: %q %v", u, err)
	}
	if _, err := e.svc.UnlinkLead(e.ctx, key, pairing.ActorBot); !errors.Is(err, pairing.ErrNotLinked) {
		t.Fatalf("second unlink: %v", err)
	}
	e.link("1", "u1")
	for i, want := range []bool{true, false} {
		got, err := e.svc.UnlinkUser(e.ctx, "u1", pairing.ActorSite)
		if err != nil || got != want {
			t.Fatalf("unlink user #%d: %v %v", i, got, err)
		}
	}
	var deleted []string
	for _, ev := range e.store.SiteEvents() {
		if ev.Type == pairing.EventLinkDeleted {
			deleted = append(deleted, string(ev.Payload))
		}
	}
	if len(deleted) != 2 {
		t.Fatalf("link.deleted events: %v", deleted)
	}
}

func TestBlockedFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.link("1", "u1")
	key := pairing.LeadKey{Channel: "telegram", ExternalID: "1"}
	if err := e.svc.SetBlocked(e.ctx, key, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetBlocked(e.ctx, key, true); err != nil { // no second event
		t.Fatal(err)
	}
	if _, err := e.svc.ResendPIN(e.ctx, e.issue("1").BUID); !errors.Is(err, pairing.ErrChannelUnavailable) {
		// issue() touched the lead, which unblocks it; resend with no channel
		// registered is unavailable either way.
		t.Fatalf("%v", err)
	}
	types := []string{}
	for _, ev := range e.store.SiteEvents() {
		types = append(types, ev.Type)
	}
	want := []string{pairing.EventLinkCreated, pairing.EventLeadBlocked, pairing.EventLeadUnblocked}
	if len(types) != len(want) {
		t.Fatalf("events %v want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v want %v", types, want)
		}
	}
}

func TestLinkLeadAndJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tg := pairing.LeadKey{Channel: "telegram", ExternalID: "1"}
	fb := pairing.LeadKey{Channel: "fb-shop", ExternalID: "psid"}
	if _, err := e.svc.LinkLead(e.ctx, tg, "u1"); !errors.Is(err, pairing.ErrNotFound) {
		t.Fatalf("unknown lead: %v", err)
	}
	e.svc.TouchLead(e.ctx, tg, pairing.Profile{})
	e.svc.TouchLead(e.ctx, fb, pairing.Profile{})
	res, err := e.svc.LinkLead(e.ctx, tg, "u1")
	if err != nil || res.Outcome != pairing.OutcomeLinked {
		t.Fatalf("%+v %v", res, err)
	}
	if err := e.svc.JoinLeads(e.ctx, fb, tg); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.svc.Status(e.ctx, fb); !st.Linked || st.UserID != "u1" {
		t.Fatalf("joined lead not linked: %+v", st)
	}
	other := pairing.LeadKey{Channel: "telegram", ExternalID: "2"}
	e.svc.TouchLead(e.ctx, other, pairing.Profile{})
	_, err = e.svc.LinkLead(e.ctx, other, "u1")
	var ce *pairing.ConflictError
	if !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictUserLinkedElsewhere {
		t.Fatalf("want conflict: %v", err)
	}
}

func TestStoreDownIsUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue("1")
	e.store.SetDown(pairing.ErrUnavailable)
	if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrUnavailable) {
		t.Fatalf("%v", err)
	}
	if err := e.svc.Ready(e.ctx); !errors.Is(err, pairing.ErrUnavailable) {
		t.Fatalf("ready: %v", err)
	}
	e.store.SetDown(nil)
	if _, err := e.authorize(p, ""); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []pairing.Config{
		{Secret: []byte("short"), LinkURL: "https://x/{buid}"},
		{Secret: make([]byte, 32), LinkURL: "https://x/no-placeholder"},
		{Secret: make([]byte, 32), LinkURL: "https://x/{buid}", PINLength: 2},
	} {
		if _, err := pairing.New(nil, c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

// A platform's names may hold a NUL or bytes that are not UTF-8, which
// PostgreSQL refuses: the person still gets a lead, with the names made
// keepable, on both engines; an external id like that is bad input.
func TestUnstorableProfileTextIsCleaned(t *testing.T) {
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		key := pairing.LeadKey{Channel: "telegram", ExternalID: "77"}
		lead, err := e.svc.TouchLead(e.ctx, key, pairing.Profile{FirstName: "A\x00nn", LastName: "B\xffc", Username: "u\x00", Locale: "en"})
		if err != nil {
			t.Fatal(err)
		}
		if p := lead.Profile; p.FirstName != "Ann" || p.LastName != "B\uFFFDc" || p.Username != "u" {
			t.Fatalf("profile %+v", lead.Profile)
		}
		if _, err := e.svc.TouchLead(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "7\x007"}, pairing.Profile{}); !errors.Is(err, pairing.ErrInvalid) {
			t.Fatalf("external id with a NUL: %v", err)
		}
	})
}
