package messenger

import (
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

type plainNotices struct{}

func (plainNotices) LinkNotice(locale, site string) (string, string) {
	return "This chat was just linked to your account on " + site + ".", "Not me: unlink"
}

// TestLinkNoticePostback: the notice goes out as a button template with a
// postback button; its press from the chat unlinks, from another chat
// does nothing.
func TestLinkNoticePostback(t *testing.T) {
	e := newEnv(t)
	e.svc.EnableLinkNotices(plainNotices{})
	e.deliver(fbfake.Text("5001", "m1", "hello"), fbfake.Text("5002", "m2", "hello"))
	if _, err := e.svc.LinkLead(e.ctx, keyA("5001"), "u1"); err != nil {
		t.Fatal(err)
	}
	claimed, err := e.store.ClaimDeliveries(e.ctx, pairing.ClaimRequest{Now: e.clock.Now(), Lease: time.Minute, Limit: 10, Token: "t"})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d: %v", len(claimed), err)
	}
	d := claimed[0]
	lead, err := e.store.LeadByKey(e.ctx, keyA("5001"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range e.hub.Channels() {
		if ch.Name() == "fb-shop" {
			if err := ch.Deliver(e.ctx, pairing.OutboundMessage{DeliveryID: d.ID, Lead: lead, Text: d.Text, Buttons: d.Buttons}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := e.last()
	if m.RecipientID != "5001" || !strings.Contains(m.Text, "linked to your account") || len(m.Buttons) != 1 ||
		m.Buttons[0].Type != "postback" || !pairing.IsLinkNoticeToken(m.Buttons[0].Payload) {
		t.Fatalf("notice %+v", m)
	}
	payload := m.Buttons[0].Payload

	before := len(e.fb.Sent())
	e.deliver(fbfake.Postback("5002", payload))
	if len(e.fb.Sent()) != before {
		t.Fatalf("another chat's press was answered: %+v", e.fb.Sent()[before:])
	}
	if st, _ := e.svc.Status(e.ctx, keyA("5001")); st.UserID != "u1" {
		t.Fatal("another chat's press unlinked")
	}

	e.deliver(fbfake.Postback("5001", payload))
	if got := e.last(); got.RecipientID != "5001" || got.Text != e.text("en", "link_notice_unlinked") {
		t.Fatalf("after the press: %+v", got)
	}
	if st, _ := e.svc.Status(e.ctx, keyA("5001")); st.Linked {
		t.Fatal("still linked")
	}
	e.deliver(fbfake.Postback("5001", payload))
	if got := e.last(); got.Text != e.text("en", "link_notice_used") {
		t.Fatalf("second press: %+v", got)
	}
}
