package pairing_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

// fakeDeliverer records sends and answers from a script of errors (nil
// once the script is used up).
type fakeDeliverer struct {
	clock interface{ Now() time.Time }
	mu    sync.Mutex
	sent  []sentAt
	errs  []error
}

type sentAt struct {
	at  time.Time
	msg pairing.OutboundMessage
}

func (f *fakeDeliverer) Deliver(_ context.Context, m pairing.OutboundMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentAt{at: f.clock.Now(), msg: m})
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	return nil
}

func (f *fakeDeliverer) script(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, errs...)
}

func (f *fakeDeliverer) calls() []sentAt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentAt(nil), f.sent...)
}

type notifyEnv struct {
	*env
	tg, fb *fakeDeliverer
	worker *pairing.NotificationWorker
}

var (
	tgLimits = pairing.ChannelLimits{MaxText: 4096, UTF16: true}
	fbLimits = pairing.ChannelLimits{MaxText: 2000, MaxTextWithButtons: 640}
)

// newNotifyEnv has two channels, "telegram" and "fb-shop", and a worker
// whose waits step the fake clock.
func newNotifyEnv(t *testing.T, cfg pairing.NotificationWorkerConfig, pace pairing.Pace) *notifyEnv {
	t.Helper()
	e := &notifyEnv{env: newEnv(t)}
	e.tg, e.fb = &fakeDeliverer{clock: e.clock}, &fakeDeliverer{clock: e.clock}
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Notifications: e.tg, NotifyLimits: tgLimits, NotifyPace: pace})
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "fb-shop", Notifications: e.fb, NotifyLimits: fbLimits, NotifyPace: pace})
	var err error
	e.worker, err = e.svc.NewNotificationWorker(cfg, pairing.WithSleep(func(ctx context.Context, d time.Duration) error {
		e.clock.Advance(d)
		return ctx.Err()
	}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *notifyEnv) notify(req pairing.NotifyRequest) pairing.Message {
	e.t.Helper()
	if req.Text == "" {
		req.Text = "Your order shipped"
	}
	m, err := e.svc.Notify(e.ctx, req)
	if err != nil {
		e.t.Fatalf("notify: %v", err)
	}
	return m
}

// run runs the worker once and returns how many deliveries it claimed.
func (e *notifyEnv) run() int {
	e.t.Helper()
	n, err := e.worker.RunOnce(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *notifyEnv) message(id int64) pairing.Message {
	e.t.Helper()
	m, err := e.svc.Message(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// events returns the site events of a type, payload decoded.
func (e *notifyEnv) events(typ string) []map[string]any {
	var out []map[string]any
	for _, ev := range e.store.SiteEvents() {
		if ev.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Payload, &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestNotifyQueuesOneDeliveryPerLead(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{}, pairing.Pace{})
	e.link("100", "u1")
	e.linkOn("fb-shop", "psid-1", "u1") // the same person on Messenger
	m := e.notify(pairing.NotifyRequest{UserID: "u1", Buttons: []pairing.Button{{Text: "Track", URL: "https://shop.example/o/1"}}})
	if m.ID == 0 || len(m.Deliveries) != 2 || m.Replayed {
		t.Fatalf("message %+v", m)
	}
	for _, d := range m.Deliveries {
		if d.Status != pairing.DeliveryQueued || d.ID == 0 {
			t.Fatalf("delivery %+v", d)
		}
	}
	only := e.notify(pairing.NotifyRequest{UserID: "u1", Channels: []string{"fb-shop", "fb-shop"}})
	if len(only.Deliveries) != 1 || only.Deliveries[0].Channel != "fb-shop" {
		t.Fatalf("channel filter: %+v", only.Deliveries)
	}
	if _, err := e.svc.Notify(e.ctx, pairing.NotifyRequest{UserID: "nobody", Text: "hi"}); !errors.Is(err, pairing.ErrNotLinked) {
		t.Fatalf("unlinked user: %v", err)
	}
	if _, err := e.svc.Notify(e.ctx, pairing.NotifyRequest{UserID: "u1", Text: "hi", Channels: []string{"viber"}}); !errors.Is(err, pairing.ErrInvalid) {
		t.Fatalf("unknown channel: %v", err)
	}
	e.link("200", "u2") // telegram only
	if _, err := e.svc.Notify(e.ctx, pairing.NotifyRequest{UserID: "u2", Text: "hi", Channels: []string{"fb-shop"}}); !errors.Is(err, pairing.ErrChannelUnavailable) {
		t.Fatalf("no lead on the channel: %v", err)
	}
	// Both deliveries of the first message go out, and each is reported.
	for e.run() > 0 {
	}
	got := e.message(m.ID)
	for _, d := range got.Deliveries {
		if d.Status != pairing.DeliveryDelivered || d.Attempts != 1 || d.FinishedAt.IsZero() {
			t.Fatalf("after run: %+v", d)
		}
	}
	if tg := e.tg.calls(); len(tg) != 1 || tg[0].msg.Lead.ExternalID != "100" || tg[0].msg.Text != "Your order shipped" || len(tg[0].msg.Buttons) != 1 {
		t.Fatalf("telegram sends: %+v", tg)
	}
	if n := len(e.events(pairing.EventMessageDelivered)); n != 3 {
		t.Fatalf("%d message.delivered events, want 3", n)
	}
	ev := e.events(pairing.EventMessageDelivered)[0]
	if ev["user_id"] != "u1" || ev["message_id"] != float64(m.ID) || ev["status"] != "delivered" {
		t.Fatalf("event %v", ev)
	}
}

func TestNotifyValidation(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{}, pairing.Pace{})
	e.link("100", "u1")
	e.linkOn("fb-shop", "psid-1", "u1")
	btn := []pairing.Button{{Text: "Open", URL: "https://shop.example/x"}}
	for name, req := range map[string]pairing.NotifyRequest{
		"empty text":            {UserID: "u1", Text: "  "},
		"text too long":         {UserID: "u1", Text: strings.Repeat("a", 4097)},
		"emoji count as two":    {UserID: "u1", Text: strings.Repeat("😀", 2049), Channels: []string{"telegram"}},
		"control character":     {UserID: "u1", Text: "a\x00b"},
		"messenger text limit":  {UserID: "u1", Text: strings.Repeat("a", 2001)},
		"messenger button text": {UserID: "u1", Text: strings.Repeat("a", 641), Buttons: btn},
		"four buttons":          {UserID: "u1", Text: "hi", Buttons: append(append(append(btn, btn...), btn...), btn...)},
		"long button text":      {UserID: "u1", Text: "hi", Buttons: []pairing.Button{{Text: strings.Repeat("b", 21), URL: "https://shop.example"}}},
		"javascript url":        {UserID: "u1", Text: "hi", Buttons: []pairing.Button{{Text: "x", URL: "javascript:alert(1)"}}},
		"localhost url":         {UserID: "u1", Text: "hi", Buttons: []pairing.Button{{Text: "x", URL: "http://localhost:3000/a"}}},
		"private url":           {UserID: "u1", Text: "hi", Buttons: []pairing.Button{{Text: "x", URL: "http://10.0.0.1/a"}}},
		"newline in button":     {UserID: "u1", Text: "hi", Buttons: []pairing.Button{{Text: "a\nb", URL: "https://shop.example"}}},
		"bad idempotency key":   {UserID: "u1", Text: "hi", IdempotencyKey: "é"},
		"long idempotency key":  {UserID: "u1", Text: "hi", IdempotencyKey: strings.Repeat("k", 256)},
		"bad user id":           {UserID: "a\nb", Text: "hi"},
	} {
		if _, err := e.svc.Notify(e.ctx, req); !errors.Is(err, pairing.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// Messenger's limits do not apply when Messenger is left out.
	e.notify(pairing.NotifyRequest{UserID: "u1", Text: strings.Repeat("a", 4096), Channels: []string{"telegram"}})
	e.notify(pairing.NotifyRequest{UserID: "u1", Text: strings.Repeat("a", 640) + "\nline two", Channels: []string{"telegram"}, Buttons: btn})
	if n := e.store.Deliveries(); n != 2 {
		t.Fatalf("%d deliveries stored, want only the 2 accepted", n)
	}
}

func TestNotifyIdempotency(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{}, pairing.Pace{})
	e.link("100", "u1")
	req := pairing.NotifyRequest{UserID: "u1", Text: "hi", IdempotencyKey: "order-7", KeyID: 1}
	first := e.notify(req)
	again := e.notify(req)
	if again.ID != first.ID || !again.Replayed || len(again.Deliveries) != 1 {
		t.Fatalf("replay: %+v", again)
	}
	if n := e.store.Deliveries(); n != 1 {
		t.Fatalf("replay queued more: %d deliveries", n)
	}
	other := req
	other.Text = "something else"
	if _, err := e.svc.Notify(e.ctx, other); !errors.Is(err, pairing.ErrIdempotencyReused) {
		t.Fatalf("same key, other body: %v", err)
	}
	otherKey := req
	otherKey.KeyID = 2
	if m := e.notify(otherKey); m.ID == first.ID || m.Replayed {
		t.Fatalf("another API key shares the key space: %+v", m)
	}
	e.clock.Advance(24*time.Hour + time.Second)
	if m := e.notify(req); m.ID == first.ID || m.Replayed {
		t.Fatalf("key reused after 24 h: %+v", m)
	}
}

func TestNotifySkipsBlockedLead(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{}, pairing.Pace{})
	e.link("100", "u1")
	e.linkOn("fb-shop", "psid-1", "u1")
	if err := e.svc.SetBlocked(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "100"}, true); err != nil {
		t.Fatal(err)
	}
	m := e.notify(pairing.NotifyRequest{UserID: "u1"})
	var statuses []string
	for _, d := range m.Deliveries {
		statuses = append(statuses, d.Channel+"="+string(d.Status)+"/"+d.LastError)
	}
	if strings.Join(statuses, " ") != "telegram=skipped/blocked fb-shop=queued/" {
		t.Fatalf("deliveries: %v", statuses)
	}
	for e.run() > 0 {
	}
	if len(e.tg.calls()) != 0 || len(e.fb.calls()) != 1 {
		t.Fatalf("sent to a blocked lead: tg %d fb %d", len(e.tg.calls()), len(e.fb.calls()))
	}
}

func TestWorkerRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	cfg := pairing.NotificationWorkerConfig{BackoffMin: 10 * time.Second, BackoffMax: 35 * time.Second, MaxAttempts: 10}
	e := newNotifyEnv(t, cfg, pairing.Pace{})
	e.link("100", "u1")
	temp := &pairing.DeliveryError{Reason: pairing.ReasonUnavailable, Detail: "502 Bad Gateway"}
	e.tg.script(temp, temp, temp, temp)
	m := e.notify(pairing.NotifyRequest{UserID: "u1"})
	// Waits: a random half to all of 10s, 20s, 35s (capped), 35s.
	for i, full := range []time.Duration{10 * time.Second, 20 * time.Second, 35 * time.Second, 35 * time.Second} {
		before := e.clock.Now()
		if e.run() != 1 {
			t.Fatalf("attempt %d not claimed", i+1)
		}
		d := e.message(m.ID).Deliveries[0]
		wait := d.NextAttemptAt.Sub(before)
		if d.Status != pairing.DeliveryQueued || d.Attempts != i+1 || wait < full/2 || wait > full ||
			d.LastError != "unavailable: 502 Bad Gateway" {
			t.Fatalf("after attempt %d: wait %v (want %v..%v), %+v", i+1, wait, full/2, full, d)
		}
		if e.run() != 0 {
			t.Fatalf("claimed before its retry time")
		}
		e.clock.Advance(wait)
	}
	if e.run() != 1 {
		t.Fatal("last attempt not claimed")
	}
	d := e.message(m.ID).Deliveries[0]
	if d.Status != pairing.DeliveryDelivered || d.Attempts != 5 || d.LastError != "" {
		t.Fatalf("final: %+v", d)
	}
	if len(e.events(pairing.EventMessageDelivered)) != 1 || len(e.events(pairing.EventMessageFailed)) != 0 {
		t.Fatal("want exactly one message.delivered event")
	}
}

func TestWorkerHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{BackoffMin: time.Second, Parallel: 1}, pairing.Pace{})
	e.link("100", "u1")
	e.link("200", "u2")
	e.tg.script(&pairing.DeliveryError{Reason: pairing.ReasonRateLimited, RetryAfter: 30 * time.Second, Detail: "429 Too Many Requests: retry after 30"})
	m1 := e.notify(pairing.NotifyRequest{UserID: "u1"})
	e.notify(pairing.NotifyRequest{UserID: "u2"})
	start := e.clock.Now()
	if e.run() != 2 {
		t.Fatal("batch not claimed")
	}
	calls := e.tg.calls()
	if len(calls) != 2 {
		t.Fatalf("%d sends", len(calls))
	}
	// The second chat's send waited for the channel's pause.
	if gap := calls[1].at.Sub(calls[0].at); gap < 30*time.Second {
		t.Fatalf("the channel did not pause after a 429: next send after %v", gap)
	}
	d := e.message(m1.ID).Deliveries[0]
	if wait := d.NextAttemptAt.Sub(start); d.Status != pairing.DeliveryQueued || wait < 30*time.Second || wait > 33*time.Second {
		t.Fatalf("retry at +%v (want 30s..33s): %+v", wait, d)
	}
}

func TestWorkerBlockedAndPermanentFailures(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{}, pairing.Pace{})
	e.link("100", "u1")
	e.linkOn("fb-shop", "psid-1", "u1")
	e.tg.script(&pairing.DeliveryError{Blocked: true, Reason: pairing.ReasonBlocked, Detail: "403 Forbidden: bot was blocked by the user"})
	e.fb.script(&pairing.DeliveryError{Permanent: true, Reason: pairing.ReasonOutsideWindow, Detail: "(#10) outside of allowed window"})
	m := e.notify(pairing.NotifyRequest{UserID: "u1"})
	for e.run() > 0 {
	}
	got := e.message(m.ID)
	want := map[string]string{"telegram": "blocked: 403 Forbidden: bot was blocked by the user", "fb-shop": "outside_window: (#10) outside of allowed window"}
	for _, d := range got.Deliveries {
		if d.Status != pairing.DeliveryFailed || d.Attempts != 1 || d.LastError != want[d.Channel] {
			t.Fatalf("delivery %+v", d)
		}
	}
	lead, err := e.store.LeadByKey(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "100"})
	if err != nil || !lead.Blocked {
		t.Fatalf("lead not marked blocked: %+v %v", lead, err)
	}
	if n := len(e.events(pairing.EventLeadBlocked)); n != 1 {
		t.Fatalf("%d lead.blocked events", n)
	}
	failed := e.events(pairing.EventMessageFailed)
	if len(failed) != 2 {
		t.Fatalf("message.failed events: %v", failed)
	}
	reasons := failed[0]["reason"].(string) + "|" + failed[1]["reason"].(string)
	if !strings.Contains(reasons, want["telegram"]) || !strings.Contains(reasons, want["fb-shop"]) {
		t.Fatalf("message.failed events: %v", failed)
	}
	// Later messages skip the blocked lead at once.
	m2 := e.notify(pairing.NotifyRequest{UserID: "u1", Channels: []string{"telegram"}})
	if m2.Deliveries[0].Status != pairing.DeliverySkipped {
		t.Fatalf("blocked lead queued: %+v", m2.Deliveries[0])
	}
}

func TestWorkerGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("max attempts", func(t *testing.T) {
		e := newNotifyEnv(t, pairing.NotificationWorkerConfig{MaxAttempts: 3, BackoffMin: time.Second, BackoffMax: time.Second}, pairing.Pace{})
		e.link("100", "u1")
		temp := errors.New("connection reset")
		e.tg.script(temp, temp, temp, temp)
		m := e.notify(pairing.NotifyRequest{UserID: "u1"})
		for range 3 {
			e.run()
			e.clock.Advance(time.Second)
		}
		d := e.message(m.ID).Deliveries[0]
		if d.Status != pairing.DeliveryFailed || d.Attempts != 3 || !strings.HasPrefix(d.LastError, "too_many_attempts (3): unavailable") {
			t.Fatalf("after 3 attempts: %+v", d)
		}
		if e.run() != 0 || len(e.tg.calls()) != 3 {
			t.Fatal("a failed delivery was tried again")
		}
		if len(e.events(pairing.EventMessageFailed)) != 1 {
			t.Fatal("no message.failed event")
		}
	})
	t.Run("max age", func(t *testing.T) {
		e := newNotifyEnv(t, pairing.NotificationWorkerConfig{MaxAge: time.Hour, BackoffMin: 40 * time.Minute, BackoffMax: 40 * time.Minute}, pairing.Pace{})
		e.link("100", "u1")
		e.tg.script(errors.New("timeout"))
		m := e.notify(pairing.NotifyRequest{UserID: "u1"})
		e.run() // fails; the retry is 20..40 min later: within the hour
		e.clock.Advance(40 * time.Minute)
		e.tg.script(errors.New("timeout"))
		e.run() // fails again; the next retry would pass the hour
		d := e.message(m.ID).Deliveries[0]
		if d.Status != pairing.DeliveryFailed || !strings.HasPrefix(d.LastError, "expired: unavailable") {
			t.Fatalf("past max age: %+v", d)
		}
		// A delivery found after its max age (the service was down) fails
		// without a send.
		m2 := e.notify(pairing.NotifyRequest{UserID: "u1"})
		e.clock.Advance(2 * time.Hour)
		sends := len(e.tg.calls())
		e.run()
		if d := e.message(m2.ID).Deliveries[0]; d.Status != pairing.DeliveryFailed || !strings.HasPrefix(d.LastError, "expired") || len(e.tg.calls()) != sends {
			t.Fatalf("stale delivery: %+v, sends %d -> %d", d, sends, len(e.tg.calls()))
		}
	})
}

func TestWorkerCrashLeaseExpires(t *testing.T) {
	t.Parallel()
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{Lease: time.Minute}, pairing.Pace{})
	e.link("100", "u1")
	m := e.notify(pairing.NotifyRequest{UserID: "u1"})
	// A worker claims the delivery and dies before recording anything.
	claimed, err := e.store.ClaimDeliveries(e.ctx, pairing.ClaimRequest{Now: e.clock.Now(), Lease: time.Minute, Limit: 10, Token: "dead"})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if e.run() != 0 {
		t.Fatal("claimed under a live lease")
	}
	e.clock.Advance(time.Minute)
	if e.run() != 1 {
		t.Fatal("not claimed after the lease passed")
	}
	d := e.message(m.ID).Deliveries[0]
	if d.Status != pairing.DeliveryDelivered || d.Attempts != 2 || len(e.tg.calls()) != 1 {
		t.Fatalf("after the lease: %+v, %d sends", d, len(e.tg.calls()))
	}
}

func TestWorkerPacesPerChatAndChannel(t *testing.T) {
	t.Parallel()
	pace := pairing.Pace{RatePerSecond: 10, PerChatInterval: time.Second}
	e := newNotifyEnv(t, pairing.NotificationWorkerConfig{Parallel: 1}, pace)
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	for i, u := range users {
		e.link(string(rune('1'+i))+"00", u)
	}
	for range 3 {
		for _, u := range users {
			e.notify(pairing.NotifyRequest{UserID: u})
		}
	}
	for e.run() > 0 {
	}
	calls := e.tg.calls()
	if len(calls) != 15 {
		t.Fatalf("%d sends, want 15", len(calls))
	}
	last := map[string]time.Time{}
	for i, c := range calls {
		if i > 0 {
			if gap := c.at.Sub(calls[i-1].at); gap < 100*time.Millisecond {
				t.Fatalf("send %d only %v after the previous one (rate 10/s)", i, gap)
			}
		}
		chat := c.msg.Lead.ExternalID
		if prev, ok := last[chat]; ok && c.at.Sub(prev) < time.Second {
			t.Fatalf("chat %s got two messages %v apart", chat, c.at.Sub(prev))
		}
		last[chat] = c.at
	}
}
