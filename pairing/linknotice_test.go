package pairing_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
)

// noticeTexts renders notices so a test can read locale and site back.
type noticeTexts struct{}

func (noticeTexts) LinkNotice(locale, site string) (string, string) {
	return "linked on " + site + " [" + locale + "]", "Not me: unlink"
}

type nopDeliver struct{}

func (nopDeliver) Deliver(context.Context, pairing.OutboundMessage) error { return nil }

// newNoticeEnv has two channels that carry messages (telegram, fb-shop),
// one with notices off (quiet), link notices on, and the site named Shop.
func newNoticeEnv(t *testing.T) *env {
	t.Helper()
	return newNoticeEnvOn(t, newEnv)
}

func newNoticeEnvOn(t *testing.T, newEnv newEnvFunc) *env {
	t.Helper()
	e := newEnv(t, func(c *pairing.Config) { c.SiteName = "Shop" })
	limits := pairing.ChannelLimits{MaxText: 4096}
	for _, name := range []string{"telegram", "fb-shop", "quiet"} {
		e.svc.RegisterChannel(pairingtest.Channel{ChannelName: name, Notifications: nopDeliver{}, NotifyLimits: limits,
			Links: linkChannel{base: "https://t.me/shop_bot?start="}})
	}
	e.svc.SetChannelOptions("quiet", pairing.ChannelOptions{NoLinkNotices: true})
	e.svc.EnableLinkNotices(noticeTexts{})
	return e
}

// notices claims every queued delivery: the link notices sent since the
// last call.
func (e *env) notices() []pairing.ClaimedDelivery {
	e.t.Helper()
	e.clock.Advance(time.Millisecond)
	got, err := e.store.ClaimDeliveries(e.ctx, pairing.ClaimRequest{Now: e.clock.Now(), Lease: time.Hour, Limit: 100, Token: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	// Done with: a chat's next message is claimed only after this one.
	for _, d := range got {
		if _, err := e.store.FinishDelivery(e.ctx, d.ID, "test", pairing.DeliveryResult{Status: pairing.DeliveryDelivered}, e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	return got
}

// oneNotice wants exactly one notice, to chat ext, about userID.
func (e *env) oneNotice(ext, userID string) pairing.ClaimedDelivery {
	e.t.Helper()
	got := e.notices()
	if len(got) != 1 {
		e.t.Fatalf("want one link notice, got %d: %+v", len(got), got)
	}
	n := got[0]
	if n.ExternalID != ext || n.UserID != userID || !strings.HasPrefix(n.Text, "linked on Shop") ||
		len(n.Buttons) != 1 || !pairing.IsLinkNoticeToken(n.Buttons[0].Data) || n.Buttons[0].URL != "" {
		e.t.Fatalf("notice %+v (want chat %s, user %s)", n, ext, userID)
	}
	return n
}

// TestLinkNoticeOnEveryPath: whichever flow links a chat, that chat gets
// one notice in the same transaction; flows that link nothing send none.
func TestLinkNoticeOnEveryPath(t *testing.T) {
	engines(t, testLinkNoticeOnEveryPath)
}

func testLinkNoticeOnEveryPath(t *testing.T, newEnv newEnvFunc) {
	newNoticeEnv := func(t *testing.T) *env { return newNoticeEnvOn(t, newEnv) }
	t.Run("authorize linked", func(t *testing.T) {
		e := newNoticeEnv(t)
		if _, err := e.authorize(e.issue("1"), "u1"); err != nil {
			t.Fatal(err)
		}
		if n := e.oneNotice("1", "u1"); !strings.HasSuffix(n.Text, "[en]") {
			t.Fatalf("the lead's language was not passed: %q", n.Text)
		}
	})
	t.Run("authorize match, already_linked and register send none", func(t *testing.T) {
		e := newNoticeEnv(t)
		e.link("1", "u1")
		e.notices()
		if res, _ := e.authorize(e.issue("1"), ""); res.Outcome != pairing.OutcomeMatch {
			t.Fatalf("match: %v", res.Outcome)
		}
		if res, _ := e.authorize(e.issue("1"), "u1"); res.Outcome != pairing.OutcomeAlreadyLinked {
			t.Fatalf("already linked: %v", res.Outcome)
		}
		if res, _ := e.authorize(e.issue("2"), ""); res.Outcome != pairing.OutcomeRegister {
			t.Fatalf("register: %v", res.Outcome)
		}
		if got := e.notices(); len(got) != 0 {
			t.Fatalf("notices without a new link: %+v", got)
		}
	})
	t.Run("grant after register", func(t *testing.T) {
		e := newNoticeEnv(t)
		res, _ := e.authorize(e.issue("1"), "")
		if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "u1"}); err != nil {
			t.Fatal(err)
		}
		e.oneNotice("1", "u1")
	})
	t.Run("conflict grant with replace", func(t *testing.T) {
		e := newNoticeEnv(t)
		e.link("1", "u1")
		e.notices()
		res, _ := e.authorize(e.issue("1"), "u2")
		if res.Outcome != pairing.OutcomeConflict {
			t.Fatalf("want conflict, got %v", res.Outcome)
		}
		if got := e.notices(); len(got) != 0 {
			t.Fatalf("a conflict sent a notice: %+v", got)
		}
		if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "u2", Replace: true}); err != nil {
			t.Fatal(err)
		}
		e.oneNotice("1", "u2")
	})
	t.Run("deep link", func(t *testing.T) {
		e := newNoticeEnv(t)
		dl := e.deepLink("telegram", "u1", "Ann")
		k := e.chat("telegram", "7")
		if _, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token); err != nil {
			t.Fatal(err)
		}
		e.oneNotice("7", "u1")
	})
	t.Run("Messenger account linking and Facebook Login matching (LinkLead)", func(t *testing.T) {
		e := newNoticeEnv(t)
		k := e.chat("fb-shop", "psid-1")
		if _, err := e.svc.LinkLead(e.ctx, k, "u1"); err != nil {
			t.Fatal(err)
		}
		e.oneNotice("psid-1", "u1")
	})
	t.Run("a second messenger joins the person: the new chat is told", func(t *testing.T) {
		e := newNoticeEnv(t)
		e.linkOn("telegram", "1", "u1")
		e.notices()
		if res, err := e.authorize(e.issueOn("fb-shop", "psid-1"), "u1"); err != nil || res.Outcome != pairing.OutcomeLinked {
			t.Fatalf("merge: %v %v", res.Outcome, err)
		}
		e.oneNotice("psid-1", "u1")
	})
	t.Run("OpenID Connect link by sub, after the hosted PIN page", func(t *testing.T) {
		e := newNoticeEnv(t)
		si := e.svc.EnableSignIn(e.store, 0, map[string]string{"telegram": "telegram"})
		p := e.issue("1")
		in, err := si.SignInWithPIN(e.ctx, p.BUID, p.PIN)
		if err != nil {
			t.Fatal(err)
		}
		// The site's authorization request completes from the session.
		if err := e.store.CreateOIDCClient(e.ctx, store.OIDCClient{ID: "c1", Name: "Shop", RedirectURIs: []string{"https://s/cb"}, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateAuthRequest(e.ctx, store.AuthRequestRecord{ID: "r1", ClientID: "c1", Request: []byte(`{}`), ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := si.Resume(e.ctx, "r1", in.Auth); err != nil {
			t.Fatal(err)
		}
		if got := e.notices(); len(got) != 0 {
			t.Fatalf("signing in linked something: %+v", got)
		}
		if _, err := si.LinkSubject(e.ctx, pairing.SubjectLinkRequest{Subject: in.Auth.Subject, UserID: "u1"}, 0); err != nil {
			t.Fatal(err)
		}
		e.oneNotice("1", "u1")
	})
	t.Run("none on a channel with notices off, to a blocked chat, or without texts", func(t *testing.T) {
		e := newNoticeEnv(t)
		e.linkOn("quiet", "1", "u1")
		k := e.chat("fb-shop", "psid-2")
		if err := e.svc.SetBlocked(e.ctx, k, true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.LinkLead(e.ctx, k, "u2"); err != nil {
			t.Fatal(err)
		}
		if got := e.notices(); len(got) != 0 {
			t.Fatalf("notices: %+v", got)
		}
	})
}

// TestLinkNoticeUnlink: the button unlinks only from the chat it was sent
// to, only the link it reported, once.
func TestLinkNoticeUnlink(t *testing.T) {
	engines(t, testLinkNoticeUnlink)
}

func testLinkNoticeUnlink(t *testing.T, newEnv newEnvFunc) {
	newNoticeEnv := func(t *testing.T) *env { return newNoticeEnvOn(t, newEnv) }
	setup := func(t *testing.T) (*env, pairing.LeadKey, string) {
		e := newNoticeEnv(t)
		e.link("1", "u1")
		return e, pairing.LeadKey{Channel: "telegram", ExternalID: "1"}, e.oneNotice("1", "u1").Buttons[0].Data
	}
	t.Run("from the chat: unlinked, the site told", func(t *testing.T) {
		e, k, tok := setup(t)
		if uid, err := e.svc.UnlinkByNotice(e.ctx, k, tok); err != nil || uid != "u1" {
			t.Fatalf("unlink: %q %v", uid, err)
		}
		if e.linkedTo(k) != "" {
			t.Fatal("still linked")
		}
		ev := e.eventsOf(pairing.EventLinkDeleted)
		if len(ev) != 1 || ev[0]["by"] != "link_notice" {
			t.Fatalf("link.deleted events %v", ev)
		}
		if _, err := e.svc.UnlinkByNotice(e.ctx, k, tok); !errors.Is(err, pairing.ErrTokenUsed) {
			t.Fatalf("second press: %v", err)
		}
		if len(e.eventsOf(pairing.EventLinkDeleted)) != 1 {
			t.Fatal("a second link.deleted")
		}
	})
	t.Run("from another chat: unknown, nothing changes", func(t *testing.T) {
		e, k, tok := setup(t)
		other := e.chat("telegram", "2")
		if _, err := e.svc.UnlinkByNotice(e.ctx, other, tok); !errors.Is(err, pairing.ErrTokenUnknown) {
			t.Fatalf("other chat: %v", err)
		}
		if e.linkedTo(k) != "u1" {
			t.Fatal("unlinked by another chat")
		}
		// The press from the wrong chat spent nothing.
		if _, err := e.svc.UnlinkByNotice(e.ctx, k, tok); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a made-up or altered token", func(t *testing.T) {
		e, k, tok := setup(t)
		for _, bad := range []string{"", "pln_", "pln_" + strings.Repeat("A", 43), tok[:len(tok)-1] + "x", tok + "x", "unlink:yes", strings.Repeat("p", 500)} {
			if _, err := e.svc.UnlinkByNotice(e.ctx, k, bad); !errors.Is(err, pairing.ErrTokenUnknown) {
				t.Fatalf("%q: %v", bad, err)
			}
		}
		if e.linkedTo(k) != "u1" {
			t.Fatal("unlinked")
		}
	})
	t.Run("after the link changed: nothing unlinked", func(t *testing.T) {
		e, k, tok := setup(t)
		if _, err := e.svc.UnlinkLead(e.ctx, k, pairing.ActorBot); err != nil {
			t.Fatal(err)
		}
		e.link("1", "u3")
		if _, err := e.svc.UnlinkByNotice(e.ctx, k, tok); !errors.Is(err, pairing.ErrNotLinked) {
			t.Fatalf("stale notice: %v", err)
		}
		if e.linkedTo(k) != "u3" {
			t.Fatal("the old notice unlinked the new link")
		}
	})
	t.Run("after its time", func(t *testing.T) {
		e, k, tok := setup(t)
		e.clock.Advance(pairing.LinkNoticeTTL + time.Second)
		if _, err := e.svc.UnlinkByNotice(e.ctx, k, tok); !errors.Is(err, pairing.ErrTokenExpired) {
			t.Fatalf("old notice: %v", err)
		}
		if e.linkedTo(k) != "u1" {
			t.Fatal("unlinked")
		}
	})
}

// TestSignInWithPINSpendsLikeAuthorize: the hosted page's PIN is the same
// credential as authorize's, under the same count, lock and single spend,
// and signing in links nothing.
func TestSignInWithPINSpendsLikeAuthorize(t *testing.T) {
	e := newNoticeEnv(t)
	si := e.svc.EnableSignIn(e.store, 0, map[string]string{"telegram": "telegram"})
	p := e.issue("1")
	_, err := si.SignInWithPIN(e.ctx, p.BUID, wrongPIN(p.PIN))
	var ae *pairing.AttemptsError
	if !errors.As(err, &ae) || ae.AttemptsLeft != 4 {
		t.Fatalf("wrong PIN: %v", err)
	}
	// The REST path sees the same count.
	if _, err := e.authorize(pairing.IssuedPIN{BUID: p.BUID, PIN: wrongPIN(p.PIN)}, ""); !errors.As(err, &ae) || ae.AttemptsLeft != 3 {
		t.Fatalf("authorize after a page guess: %v", err)
	}
	var fe *pairing.FieldError
	if _, err := si.SignInWithPIN(e.ctx, p.BUID, "12"); !errors.As(err, &fe) {
		t.Fatalf("malformed PIN: %v", err)
	}
	if _, err := si.SignInWithPIN(e.ctx, p.BUID, ""); !errors.As(err, &fe) {
		t.Fatalf("no PIN: %v", err)
	}
	in, err := si.SignInWithPIN(e.ctx, p.BUID, p.PIN)
	if err != nil || in.Auth.Subject == "" || strings.Join(in.Auth.AMR, " ") != "otp telegram" || in.Lead.ExternalID != "1" {
		t.Fatalf("right PIN: %+v %v", in, err)
	}
	if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrPINUsed) {
		t.Fatalf("the page's PIN spent twice: %v", err)
	}
	if _, err := si.SignInWithPIN(e.ctx, p.BUID, p.PIN); !errors.Is(err, pairing.ErrPINUsed) {
		t.Fatalf("page replay: %v", err)
	}
	if got := e.notices(); len(got) != 0 || e.linkedTo(pairing.LeadKey{Channel: "telegram", ExternalID: "1"}) != "" {
		t.Fatal("signing in linked")
	}
	// Five wrong PINs lock the row for the page too, the right one included.
	p = e.issue("2")
	for range 5 {
		_, _ = si.SignInWithPIN(e.ctx, p.BUID, wrongPIN(p.PIN))
	}
	if _, err := si.SignInWithPIN(e.ctx, p.BUID, p.PIN); !errors.Is(err, pairing.ErrPINLocked) {
		t.Fatalf("locked: %v", err)
	}
	if _, err := si.SignInWithPIN(e.ctx, "nope", p.PIN); !errors.Is(err, pairing.ErrBUIDUnknown) {
		t.Fatalf("unknown BUID: %v", err)
	}
	var sawPage bool
	for _, a := range e.store.Audit() {
		sawPage = sawPage || a.Action == "pin_page" && a.Outcome == string(pairing.OutcomeSignedIn)
	}
	if !sawPage {
		t.Fatal("no pin_page line in the audit trail")
	}
}

// TestChannelLinkURL: a channel with the hosted PIN page gets its own link.
func TestChannelLinkURL(t *testing.T) {
	e := newNoticeEnv(t)
	e.svc.SetChannelOptions("fb-shop", pairing.ChannelOptions{LinkURL: "https://pairing.example/pair?buid={buid}"})
	if p := e.issueOn("fb-shop", "x"); p.URL != "https://pairing.example/pair?buid="+p.BUID {
		t.Fatalf("fb-shop link %q", p.URL)
	}
	if p := e.issue("y"); p.URL != "https://site.example/pair?buid="+p.BUID {
		t.Fatalf("telegram link %q", p.URL)
	}
}

// TestNotifyRefusesDataButtons: only pairingd's own messages carry
// callback buttons.
func TestNotifyRefusesDataButtons(t *testing.T) {
	e := newNoticeEnv(t)
	e.link("1", "u1")
	_, err := e.svc.Notify(e.ctx, pairing.NotifyRequest{UserID: "u1", Text: "hi",
		Buttons: []pairing.Button{{Text: "x", URL: "https://shop.example/", Data: "pln_x"}}})
	var fe *pairing.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want a field error, got %v", err)
	}
}

// TestSignInChatOncePerProof: a platform's signed login signs in once.
func TestSignInChatOncePerProof(t *testing.T) {
	e := newNoticeEnv(t)
	si := e.svc.EnableSignIn(e.store, 0, map[string]string{"telegram": "telegram"})
	k := e.chat("telegram", "42")
	proof := pairing.ChatProof{Hash: []byte("proof-1"), Until: t0.Add(time.Hour)}
	in, err := si.SignInChat(e.ctx, k, pairing.AMRTelegramLogin, proof)
	if err != nil || in.Auth.Subject == "" || strings.Join(in.Auth.AMR, " ") != "telegram_login telegram" {
		t.Fatalf("first: %+v %v", in, err)
	}
	if _, err := si.SignInChat(e.ctx, k, pairing.AMRTelegramLogin, proof); !errors.Is(err, pairing.ErrTokenUsed) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := si.SignInChat(e.ctx, k, pairing.AMRTelegramLogin, pairing.ChatProof{}); err == nil {
		t.Fatal("signed in without a proof")
	}
	if _, err := si.SignInChat(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "777"}, pairing.AMRTelegramLogin,
		pairing.ChatProof{Hash: []byte("proof-2"), Until: t0.Add(time.Hour)}); !errors.Is(err, pairing.ErrNotFound) {
		t.Fatalf("a stranger: %v", err)
	}
}
