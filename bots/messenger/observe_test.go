package messenger

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
)

// TestEveryMessageSentIsCounted: every message a Page sends is reported
// once to the observer with its Page, kind and result, whether the hub
// sent it on its own (the PIN for "login", answers) or the service asked
// for it (a PIN resend, a notification).
func TestEveryMessageSentIsCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.1", "login"))
	_, buid := pinOf(t, e.last())
	e.deliver(fbfake.Text("5001", "m.2", "status"))
	e.fb.FailNext(551, 0) // the person blocked the Page
	e.deliver(fbfake.Text("5002", "m.3", "status"))
	if rec := e.post(secretB, fbfake.Delivery(pageB, fbfake.Text("6001", "m.4", "status"))); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	e.drain()
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.ResendPIN(e.ctx, buid); err != nil {
		t.Fatal(err)
	}
	d := e.hub.Channel("fb-shop")
	if err := d.Deliver(e.ctx, outbound("5001")); err != nil {
		t.Fatal(err)
	}
	for _, code := range []int{613, 100, 2, 551} {
		e.fb.FailNext(code, 0)
		_ = d.Deliver(e.ctx, outbound("5003"))
	}

	want := map[string]int{
		"fb-shop pin delivered":             2, // "login", the resend
		"fb-shop reply delivered":           1, // status
		"fb-shop reply blocked":             1, // status from a person who blocked the Page
		"fb-news reply delivered":           1,
		"fb-shop notification delivered":    1,
		"fb-shop notification rate_limited": 1,
		"fb-shop notification failed":       1,
		"fb-shop notification retried":      1,
		"fb-shop notification blocked":      1,
	}
	got := e.obs.Sends()
	if !maps.Equal(got, want) {
		t.Fatalf("sends counted:\n%v\nwant\n%v", got, want)
	}
	n, calls := 0, 0
	for _, c := range got {
		n += c
	}
	for _, r := range e.fb.Requests() {
		if strings.HasSuffix(r.Path, "/me/messages") {
			calls++
		}
	}
	if calls != n {
		t.Fatalf("%d messages counted, the Send API got %d requests", n, calls)
	}
}
