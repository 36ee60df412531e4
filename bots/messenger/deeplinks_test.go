package messenger

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

// newLink is the site asking for a deep link to a Page.
func (e *env) newLink(channel, userID, name string) pairing.DeepLink {
	e.t.Helper()
	dl, err := e.svc.CreateDeepLink(e.ctx, pairing.DeepLinkRequest{UserID: userID, Channel: channel, DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return dl
}

// getStartedWithRef is the Get Started postback of a new thread opened
// through m.me/<page>?ref=<ref>.
func getStartedWithRef(psid, ref string) map[string]any {
	m := fbfake.Postback(psid, payloadGetStarted)
	m["postback"].(map[string]any)["referral"] = map[string]any{"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
	return m
}

func (e *env) linkedTo(k pairing.LeadKey) string {
	e.t.Helper()
	st, err := e.svc.Status(e.ctx, k)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.UserID
}

func (e *env) linkCreated(userID string) int {
	n := 0
	for _, ev := range e.store.SiteEvents() {
		if ev.Type == pairing.EventLinkCreated && ev.UserID == userID {
			n++
		}
	}
	return n
}

func TestDeepLinkGetStartedConfirm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dl := e.newLink("fb-shop", "site-7", "Ann Smith")
	if dl.URL != "https://m.me/"+pageA+"?ref="+dl.Token {
		t.Fatalf("url %q", dl.URL)
	}
	e.deliver(getStartedWithRef("5001", dl.Token))
	ask := e.last()
	if ask.Text != e.hub.text("en", "messenger_deeplink_confirm", map[string]any{"Name": "Ann Smith"}) || !strings.Contains(ask.Text, "Ann Smith") {
		t.Fatalf("question %q", ask.Text)
	}
	if got := payloads(ask.QuickReplies); !slices.Equal(got, []string{payloadDeepLinkConfirm + dl.Token, payloadDeepLinkCancel + ":" + dl.Token}) {
		t.Fatalf("quick replies %v", got)
	}
	if e.linkedTo(keyA("5001")) != "" {
		t.Fatal("linked before confirmation")
	}
	e.deliver(fbfake.QuickReplyEvent("5001", "m.1", "Yes, link it", ask.QuickReplies[0].Payload))
	if e.last().Text != e.text("en", "messenger_linked") {
		t.Fatalf("after confirm %q", e.last().Text)
	}
	if got := e.linkedTo(keyA("5001")); got != "site-7" {
		t.Fatalf("linked to %q", got)
	}
	if n := e.linkCreated("site-7"); n != 1 {
		t.Fatalf("%d link.created", n)
	}
	// A second tap, and the same link opened by someone else: used.
	e.deliver(fbfake.QuickReplyEvent("5001", "m.2", "Yes, link it", ask.QuickReplies[0].Payload))
	if e.last().Text != e.text("en", "messenger_deeplink_used") {
		t.Fatalf("second tap %q", e.last().Text)
	}
	e.deliver(fbfake.Referral("5002", dl.Token))
	if e.last().Text != e.text("en", "messenger_deeplink_used") || e.linkedTo(keyA("5002")) != "" {
		t.Fatalf("used link elsewhere %q", e.last().Text)
	}
	if strings.Contains(e.logs.String(), dl.Token) {
		t.Fatal("token logged")
	}
	// The stored events (Get Started's referral, the quick replies, the
	// referral) hold the token sealed, never in the clear.
	stored, err := e.store.InboundPayloads(e.ctx, dedupeSource)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, p := range stored {
		if strings.Contains(string(p), dl.Token) {
			t.Fatalf("a stored event holds the token: %s", p)
		}
		if strings.Contains(string(p), "pzs_") {
			sealed++
		}
	}
	if sealed != 4 {
		t.Fatalf("%d of %d stored events hold a sealed token, want 4", sealed, len(stored))
	}
}

func TestDeepLinkReferralInExistingThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.0", "hello"))
	dl := e.newLink("fb-shop", "site-8", "")
	e.deliver(fbfake.Referral("5001", dl.Token))
	ask := e.last()
	if ask.Text != e.text("en", "messenger_deeplink_confirm_neutral") || len(ask.QuickReplies) != 2 {
		t.Fatalf("question %+v", ask)
	}
	// Cancel first (the button, then a bare Cancel of a button sent before
	// Cancel carried the token): nothing changes and the token still works.
	for _, payload := range []string{ask.QuickReplies[1].Payload, payloadDeepLinkCancel} {
		e.deliver(fbfake.QuickReplyEvent("5001", "m.1"+payload, "Cancel", payload))
		if e.last().Text != e.text("en", "messenger_deeplink_cancelled") || e.linkedTo(keyA("5001")) != "" {
			t.Fatalf("cancel %q: %q", payload, e.last().Text)
		}
	}
	e.deliver(fbfake.QuickReplyEvent("5001", "m.2", "Yes", ask.QuickReplies[0].Payload))
	if e.last().Text != e.text("en", "messenger_linked") || e.linkedTo(keyA("5001")) != "site-8" {
		t.Fatalf("confirm %q", e.last().Text)
	}
}

func TestDeepLinkRefusedInMessenger(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Expired before the tap.
	dl := e.newLink("fb-shop", "site-7", "Ann")
	e.deliver(fbfake.Referral("5001", dl.Token))
	ask := e.last()
	e.clock.Advance(15 * time.Minute)
	e.deliver(fbfake.QuickReplyEvent("5001", "m.1", "Yes", ask.QuickReplies[0].Payload))
	if e.last().Text != e.text("en", "messenger_deeplink_expired") || e.linkedTo(keyA("5001")) != "" {
		t.Fatalf("expired %q", e.last().Text)
	}
	e.deliver(getStartedWithRef("5002", dl.Token))
	if e.last().Text != e.text("en", "messenger_deeplink_expired") {
		t.Fatalf("expired on open %q", e.last().Text)
	}

	// A token made for the other Page is unknown here.
	other := e.newLink("fb-news", "site-7", "")
	e.deliver(fbfake.Referral("5003", other.Token))
	if e.last().Text != e.text("en", "messenger_deeplink_unknown") {
		t.Fatalf("other page's token %q", e.last().Text)
	}

	// The chat is linked to another site user: conflict, nothing changes.
	e.deliver(fbfake.Text("5004", "m.4", "hello"))
	if _, err := e.svc.LinkLead(e.ctx, keyA("5004"), "site-old"); err != nil {
		t.Fatal(err)
	}
	fresh := e.newLink("fb-shop", "site-9", "")
	e.deliver(fbfake.Referral("5004", fresh.Token))
	e.deliver(fbfake.QuickReplyEvent("5004", "m.5", "Yes", e.last().QuickReplies[0].Payload))
	if e.last().Text != e.text("en", "messenger_conflict_chat") || e.linkedTo(keyA("5004")) != "site-old" {
		t.Fatalf("conflict %q", e.last().Text)
	}

	// A forged confirm payload.
	e.deliver(fbfake.QuickReplyEvent("5005", "m.6", "Yes", payloadDeepLinkConfirm+"pdl_forged"))
	if e.last().Text != e.text("en", "messenger_deeplink_unknown") || e.linkedTo(keyA("5005")) != "" {
		t.Fatalf("forged %q", e.last().Text)
	}
}
