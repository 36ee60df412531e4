package telegram

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func outbound(chat string, buttons ...pairing.Button) pairing.OutboundMessage {
	return pairing.OutboundMessage{DeliveryID: 1, MessageID: 1, Text: "Order <b>7</b> shipped & on its way",
		Lead: pairing.Lead{Channel: chName, ExternalID: chat}, Buttons: buttons}
}

func deliveryErr(t *testing.T, err error) *pairing.DeliveryError {
	t.Helper()
	var de *pairing.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("want a *pairing.DeliveryError, got %T %v", err, err)
	}
	if strings.Contains(de.Error(), token) || strings.Contains(de.Error(), "AAHdqTcv") {
		t.Fatalf("token in error: %v", de)
	}
	return de
}

func TestDeliverSendsPlainTextWithURLButtons(t *testing.T) {
	e := newEnv(t)
	err := e.bot.Deliver(e.ctx, outbound("4242",
		pairing.Button{Text: "Track", URL: "https://shop.example/o/7"}, pairing.Button{Text: "Help", URL: "https://shop.example/help"}))
	if err != nil {
		t.Fatal(err)
	}
	sent := e.tg.SentTo(4242)
	if len(sent) != 1 {
		t.Fatalf("%d messages", len(sent))
	}
	m := sent[0]
	if m.Text != "Order <b>7</b> shipped & on its way" || m.ParseMode != "" {
		t.Fatalf("the site's text must go out as plain text: %q mode %q", m.Text, m.ParseMode)
	}
	b := m.Buttons()
	if len(b) != 2 || b[0].Text != "Track" || b[0].URL == nil || *b[0].URL != "https://shop.example/o/7" || len(m.Keyboard.InlineKeyboard) != 2 {
		t.Fatalf("buttons %+v", m.Keyboard)
	}
}

func TestDeliverMapsBotAPIErrors(t *testing.T) {
	e := newEnv(t)
	// 429: returned at once with retry_after, not waited out here.
	e.tg.FailNext("sendMessage", 429, 7)
	de := deliveryErr(t, e.bot.Deliver(e.ctx, outbound("1")))
	if de.Permanent || de.Reason != pairing.ReasonRateLimited || de.RetryAfter != 7*time.Second {
		t.Fatalf("429: %+v", de)
	}
	if n := e.tg.CallCount("sendMessage"); n != 1 || len(e.slept()) != 0 {
		t.Fatalf("429 retried inside the adapter: %d calls, sleeps %v", n, e.slept())
	}
	// 403: blocked, permanent. The adapter leaves marking the lead to the
	// outbox (one place for the rule).
	e.tg.Block(2)
	de = deliveryErr(t, e.bot.Deliver(e.ctx, outbound("2")))
	if !de.Blocked || !de.Permanent || de.Reason != pairing.ReasonBlocked || !strings.Contains(de.Detail, "403") {
		t.Fatalf("403: %+v", de)
	}
	// 400: permanent.
	e.tg.FailNext("sendMessage", 400, 0)
	de = deliveryErr(t, e.bot.Deliver(e.ctx, outbound("3")))
	if !de.Permanent || de.Blocked || de.Reason != pairing.ReasonRejected {
		t.Fatalf("400: %+v", de)
	}
	// 5xx: temporary.
	e.tg.FailNext("sendMessage", 502, 0)
	de = deliveryErr(t, e.bot.Deliver(e.ctx, outbound("4")))
	if de.Permanent || de.Reason != pairing.ReasonUnavailable {
		t.Fatalf("502: %+v", de)
	}
	// 401: the token is refused; the messages wait for the operator.
	e.tg.FailNext("sendMessage", 401, 0)
	de = deliveryErr(t, e.bot.Deliver(e.ctx, outbound("5")))
	if de.Permanent || de.Reason != pairing.ReasonTokenRefused {
		t.Fatalf("401: %+v", de)
	}
	// A lead of another channel, or not a chat id: refused without a call.
	calls := e.tg.CallCount("sendMessage")
	other := outbound("6")
	other.Lead.Channel = "fb-shop"
	if de := deliveryErr(t, e.bot.Deliver(e.ctx, other)); !de.Permanent {
		t.Fatalf("other channel: %+v", de)
	}
	if de := deliveryErr(t, e.bot.Deliver(e.ctx, outbound("psid-x"))); !de.Permanent {
		t.Fatalf("bad chat id: %+v", de)
	}
	if e.tg.CallCount("sendMessage") != calls {
		t.Fatal("a refused delivery called the Bot API")
	}
}
