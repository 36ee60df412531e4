package messenger

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

const (
	linkingToken = "ALT-account-linking-token-0123456789"
	metaRedirect = "https://www.facebook.com/messenger_platform/account_linking/?account_linking_token=ALT-in-query"
)

func TestAccountLinkingEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.1", "hi"))
	e.fb.SetAccountLinkingToken(linkingToken, "5001")

	redirect, err := e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, "user-1")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(redirect)
	if !strings.HasPrefix(redirect, metaRedirect+"&authorization_code=") || u.Query().Get("account_linking_token") != "ALT-in-query" {
		t.Fatalf("redirect %q", redirect)
	}
	code := u.Query().Get("authorization_code")
	if st, _ := e.svc.Status(e.ctx, keyA("5001")); !st.Linked || st.UserID != "user-1" {
		t.Fatalf("not linked: %+v", st)
	}
	if strings.Contains(code, "user-1") || strings.Contains(code, "5001") {
		t.Fatal("code is not encoded")
	}

	e.deliver(fbfake.AccountLinked("5001", code))
	if e.last().Text != e.text("en", "messenger_linked") {
		t.Fatalf("confirmation %q", e.last().Text)
	}
	// Messenger's "Log out" from the menu.
	e.deliver(fbfake.AccountUnlinked("5001"))
	if st, _ := e.svc.Status(e.ctx, keyA("5001")); st.Linked || e.last().Text != e.text("en", "messenger_unlinked") {
		t.Fatal("unlinked webhook did not unlink")
	}
	evs := e.store.SiteEvents()
	if ev := evs[len(evs)-1]; ev.Type != pairing.EventLinkDeleted || !strings.Contains(string(ev.Payload), `"by":"messenger_account_unlinking"`) {
		t.Fatalf("site event %s %s", ev.Type, ev.Payload)
	}
	// The Graph lookup used the page token with its proof.
	var saw bool
	for _, r := range e.fb.Requests() {
		if r.Path == "/me" && r.Query.Get("fields") == "recipient" {
			saw = r.HadProof
		}
	}
	if !saw {
		t.Fatal("no proven account linking lookup")
	}
}

func TestAccountLinkingRedirectURI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fb.SetAccountLinkingToken(linkingToken, "5001")
	fake, _ := url.Parse(e.fb.URL())
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://facebook.com/cb", true},
		{"https://m.facebook.com/cb?x=1&y=%20z", true},
		{"https://WWW.MESSENGER.COM/cb", true},
		{"https://" + fake.Host + "/callback", true},
		{"http://www.facebook.com/cb", false},
		{"https://evil.example/cb", false},
		{"https://facebook.com.evil.example/cb", false},
		{"https://evilfacebook.com/cb", false},
		{"https://facebook.com:8443/cb", false},
		{"https://user:pw@facebook.com/cb", false},
		{"https://facebook.com/cb#frag", false},
		{"//facebook.com/cb", false},
		{"javascript:alert(1)", false},
		{"", false},
	} {
		redirect, err := e.hub.AccountLinking(e.ctx, linkingToken, tc.uri, "user-1")
		if tc.ok != (err == nil) {
			t.Errorf("%q: %v", tc.uri, err)
			continue
		}
		if !tc.ok {
			var fe *pairing.FieldError
			if !errors.As(err, &fe) || fe.Field != "redirect_uri" || !errors.Is(err, pairing.ErrInvalid) {
				t.Errorf("%q: want a redirect_uri field error, got %v", tc.uri, err)
			}
			continue
		}
		u, _ := url.Parse(redirect)
		if u.Query().Get("authorization_code") == "" || (strings.Contains(tc.uri, "?") && u.Query().Get("x") != "1") {
			t.Errorf("%q -> %q", tc.uri, redirect)
		}
		if strings.Contains(tc.uri, "?") && !strings.HasPrefix(redirect, tc.uri+"&") {
			t.Errorf("existing query not kept verbatim: %q", redirect)
		}
		if !strings.Contains(tc.uri, "?") && !strings.HasPrefix(redirect, tc.uri+"?authorization_code=") {
			t.Errorf("query not added: %q", redirect)
		}
	}
}

func TestAccountLinkingRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tok := range []string{"", "unknown-token", "bad\ntoken", strings.Repeat("x", 2000)} {
		if _, err := e.hub.AccountLinking(e.ctx, tok, metaRedirect, "user-1"); !errors.Is(err, pairing.ErrTokenUnknown) {
			t.Errorf("token %.10q: %v", tok, err)
		}
	}
	if _, err := e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, ""); !errors.Is(err, pairing.ErrInvalid) {
		t.Errorf("empty user: %v", err)
	}
	// A token only page B knows resolves to page B's channel.
	e.fb.SetAccountLinkingTokenFor(pageB, linkingToken, "6001")
	if _, err := e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, "user-b"); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.svc.Status(e.ctx, keyB("6001")); st.UserID != "user-b" {
		t.Fatalf("page B lead: %+v", st)
	}
	// Conflict: the chat is linked to user-b already.
	_, err := e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, "user-c")
	var ce *pairing.ConflictError
	if !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictBotLinkedElsewhere {
		t.Fatalf("conflict: %v", err)
	}
	// Graph down: a channel error, not an unknown token.
	e.fb.Close()
	if _, err := e.hub.AccountLinking(e.ctx, linkingToken, metaRedirect, "user-1"); !errors.Is(err, pairing.ErrChannelFailed) {
		t.Fatalf("graph down: %v", err)
	}
}

func TestAuthorizationCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.hub.byName["fb-shop"], e.hub.byName["fb-news"]
	code := e.hub.authCode(a, "5001", "user|with|bars", e.clock.Now().Add(authCodeTTL))
	psid, user, ok := e.hub.verifyAuthCode(a, code)
	if !ok || psid != "5001" || user != "user|with|bars" {
		t.Fatalf("round trip: %v %q %q", ok, psid, user)
	}
	enc, sig, _ := strings.Cut(code, ".")
	forged := e.hub.authCode(a, "5002", "user|with|bars", e.clock.Now().Add(authCodeTTL))
	fenc, _, _ := strings.Cut(forged, ".")
	for name, bad := range map[string]string{
		"other page":     code,
		"swapped body":   fenc + "." + sig,
		"no signature":   enc,
		"empty":          "",
		"bad base64":     "!!!." + sig,
		"short mac":      enc + "." + sig[:10],
		"garbage":        "a.b.c",
		"signed garbage": "eA." + sig,
	} {
		p := a
		if name == "other page" {
			p = b
		}
		if _, _, ok := e.hub.verifyAuthCode(p, bad); ok {
			t.Errorf("%s accepted", name)
		}
	}
	e.clock.Advance(authCodeTTL + time.Second)
	if _, _, ok := e.hub.verifyAuthCode(a, code); ok {
		t.Fatal("expired code accepted")
	}
}

func TestLinkedWebhookWithBadCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hub.byName["fb-shop"]
	other := e.hub.authCode(p, "5002", "user-1", e.clock.Now().Add(time.Minute))
	for i, code := range []string{"forged.code", other} {
		e.deliver(fbfake.AccountLinked("5001", code))
		if st, _ := e.svc.Status(e.ctx, keyA("5001")); st.Linked || e.last().Text != e.text("en", "messenger_link_failed") {
			t.Fatalf("case %d: bad code linked or wrong answer %q", i, e.last().Text)
		}
	}
	// A valid code whose link conflicts explains the conflict.
	if _, err := e.svc.LinkLead(e.ctx, keyA("5001"), "user-1"); err != nil {
		t.Fatal(err)
	}
	e.deliver(fbfake.AccountLinked("5001", e.hub.authCode(p, "5001", "user-2", e.clock.Now().Add(time.Minute))))
	if e.last().Text != e.text("en", "messenger_conflict_chat") {
		t.Fatalf("conflict answer %q", e.last().Text)
	}
}
