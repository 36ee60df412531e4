package messenger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func outbound(psid string, buttons ...pairing.Button) pairing.OutboundMessage {
	return pairing.OutboundMessage{DeliveryID: 1, MessageID: 1, Text: "Your order shipped",
		Lead: pairing.Lead{Channel: "fb-shop", ExternalID: psid}, Buttons: buttons}
}

func deliveryErr(t *testing.T, err error) *pairing.DeliveryError {
	t.Helper()
	var de *pairing.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("want a *pairing.DeliveryError, got %T %v", err, err)
	}
	for _, s := range []string{tokenA, secretA} {
		if strings.Contains(de.Error(), s) {
			t.Fatalf("secret in error: %v", de)
		}
	}
	return de
}

func TestDeliverUsesMessageTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.hub.Channel("fb-shop")
	if e.hub.Channel("nope") != nil {
		t.Fatal("deliverer for an unknown page")
	}
	e.fb.CloseWindow("psid-1") // outside the 24 h window: only a tag may send
	if err := d.Deliver(e.ctx, outbound("psid-1")); err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(e.ctx, outbound("psid-1", pairing.Button{Text: "Track", URL: "https://shop.example/o/7"})); err != nil {
		t.Fatal(err)
	}
	sent := e.fb.Sent()
	if len(sent) != 2 {
		t.Fatalf("%d sent", len(sent))
	}
	if m := sent[0]; m.MessagingType != "MESSAGE_TAG" || m.Tag != DefaultMessageTag || m.Text != "Your order shipped" || len(m.Buttons) != 0 {
		t.Fatalf("text message %+v", m)
	}
	if m := sent[1]; len(m.Buttons) != 1 || m.Buttons[0].Type != "web_url" || m.Buttons[0].Title != "Track" || m.Text != "Your order shipped" {
		t.Fatalf("button template %+v", m)
	}
}

func TestDeliverMapsGraphErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.hub.Channel("fb-shop")
	for _, c := range []struct {
		code, subcode int
		reason        string
		blocked, perm bool
		retryAfter    time.Duration
	}{
		{551, 0, pairing.ReasonBlocked, true, true, 0},
		{200, 1545041, pairing.ReasonBlocked, true, true, 0},
		{10, 2018278, pairing.ReasonOutsideWindow, false, true, 0},
		{10, 2018300, pairing.ReasonThreadControlled, false, true, 0},
		{613, 0, pairing.ReasonRateLimited, false, false, rateLimitPause},
		{4, 0, pairing.ReasonRateLimited, false, false, rateLimitPause},
		{2, 0, pairing.ReasonUnavailable, false, false, 0},
		{100, 0, pairing.ReasonRejected, false, true, 0},
	} {
		before := len(e.fb.Requests())
		e.fb.FailNext(c.code, c.subcode)
		de := deliveryErr(t, d.Deliver(e.ctx, outbound("psid-2")))
		if de.Reason != c.reason || de.Blocked != c.blocked || de.Permanent != c.perm || de.RetryAfter != c.retryAfter {
			t.Errorf("code %d/%d: %+v", c.code, c.subcode, de)
		}
		if n := len(e.fb.Requests()) - before; n != 1 {
			t.Errorf("code %d/%d: %d requests, want one attempt", c.code, c.subcode, n)
		}
	}
	// The adapter does not mark leads: the outbox does, through SetBlocked.
	if n := len(e.store.SiteEvents()); n != 0 {
		t.Fatalf("%d site events written by the adapter", n)
	}
}
