package pairing_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func TestEventJSONShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue("42")
	res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: "site-7"})
	if err != nil || res.Outcome != pairing.OutcomeLinked {
		t.Fatalf("authorize %+v %v", res, err)
	}
	if _, err := e.svc.UnlinkUser(e.ctx, "site-7", pairing.ActorOperator); err != nil {
		t.Fatal(err)
	}
	evs := e.store.SiteEvents()
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	want := []string{
		`{"id":%d,"type":"link.created","created_at":"2026-11-23T10:00:00Z","user_id":"site-7","data":{"by":"site","channel":"telegram","person_id":%d}}`,
		`{"id":%d,"type":"link.deleted","created_at":"2026-11-23T10:00:00Z","user_id":"site-7","data":{"by":"operator","person_id":%d}}`,
	}
	for i, ev := range evs {
		body, err := pairing.EventBody(ev)
		if err != nil {
			t.Fatal(err)
		}
		if w := fmt.Sprintf(want[i], ev.ID, res.PersonID); string(body) != w {
			t.Fatalf("event %d body\n got %s\nwant %s", i, body, w)
		}
	}
	// No user: user_id is null; a broken payload gives empty data.
	b, _ := pairing.EventBody(pairing.SiteEvent{ID: 9, Type: pairing.EventLeadBlocked, Payload: []byte("not json"), CreatedAt: t0})
	if string(b) != `{"id":9,"type":"lead.blocked","created_at":"2026-11-23T10:00:00Z","user_id":null,"data":{}}` {
		t.Fatalf("no-user body %s", b)
	}
}

func TestSiteEventsPolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 5 {
		if err := e.store.AddSiteEvent(e.ctx, pairing.SiteEvent{Type: "link.created", UserID: "u", Payload: []byte("{}"), CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	// At t0+5s, events written after t0+3s have not settled yet.
	e.clock.Advance(5 * time.Second)
	evs, next, more, err := e.svc.SiteEvents(e.ctx, 0, 2)
	if err != nil || len(evs) != 2 || next != evs[1].ID || !more {
		t.Fatalf("page 1: %d events next %d more %v err %v", len(evs), next, more, err)
	}
	evs, next2, more, err := e.svc.SiteEvents(e.ctx, next, 10)
	if err != nil || len(evs) != 2 || !more || next2 != evs[1].ID {
		t.Fatalf("page 2: %d events next %d more %v err %v", len(evs), next2, more, err)
	}
	e.clock.Advance(time.Minute)
	evs, next3, more, err := e.svc.SiteEvents(e.ctx, next2, 10)
	if err != nil || len(evs) != 1 || more || next3 != evs[0].ID {
		t.Fatalf("page 3: %d events more %v err %v", len(evs), more, err)
	}
	evs, next4, more, err := e.svc.SiteEvents(e.ctx, next3, 0)
	if err != nil || len(evs) != 0 || more || next4 != next3 {
		t.Fatalf("empty page: %d events next %d more %v err %v", len(evs), next4, more, err)
	}
	for _, bad := range []struct {
		after int64
		limit int
	}{{-1, 10}, {0, -1}, {0, 1001}} {
		if _, _, _, err := e.svc.SiteEvents(e.ctx, bad.after, bad.limit); !errors.Is(err, pairing.ErrInvalid) {
			t.Fatalf("after %d limit %d: %v", bad.after, bad.limit, err)
		}
	}
}

func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	// The default policy: 5s, 10s, 20s ... capped at 1h, for 24h.
	p := pairing.DefaultJobsConfig().SiteEventWorkerConfig(nil).Policy
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for i, w := range want {
		if got := p.Backoff(i + 1); got != w {
			t.Fatalf("backoff %d = %v, want %v", i+1, got, w)
		}
	}
	if p.Backoff(12) != time.Hour || p.Backoff(1000) != time.Hour {
		t.Fatalf("backoff not capped at 1h: %v %v", p.Backoff(12), p.Backoff(1000))
	}
	// Jitter keeps the wait in [backoff/2, backoff].
	zeros := bytes.NewReader(make([]byte, 8))
	if got := p.Delay(3, zeros); got != 10*time.Second {
		t.Fatalf("least jitter %v", got)
	}
	if got := p.Delay(3, bytes.NewReader(bytes.Repeat([]byte{0xff}, 8))); got < 19*time.Second || got > 20*time.Second {
		t.Fatalf("most jitter %v", got)
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := p.Delay(4, pairing.CryptoRand)
		if d < 20*time.Second || d > 40*time.Second {
			t.Fatalf("delay %v outside [20s, 40s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("jitter hardly varies: %d distinct delays", len(seen))
	}
}

func TestRetryGivesUpAfterWindow(t *testing.T) {
	t.Parallel()
	p := pairing.RetryPolicy{Initial: 5 * time.Second, Max: time.Hour, RetryFor: 24 * time.Hour}
	created := t0
	// A failure well inside the window is retried.
	next, giveUp := p.Next(created, 1, t0, pairing.CryptoRand)
	if giveUp || next.Before(t0.Add(2500*time.Millisecond)) || next.After(t0.Add(5*time.Second)) {
		t.Fatalf("first retry at %v giveUp %v", next, giveUp)
	}
	// Close to the end, the last retry lands exactly on the deadline.
	next, giveUp = p.Next(created, 30, t0.Add(23*time.Hour+50*time.Minute), pairing.CryptoRand)
	if giveUp || !next.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("last retry at %v giveUp %v", next, giveUp)
	}
	// A failure at the deadline gives up.
	if _, giveUp := p.Next(created, 31, t0.Add(24*time.Hour), pairing.CryptoRand); !giveUp {
		t.Fatal("no give-up at the deadline")
	}
}

func TestDeliverableOrdering(t *testing.T) {
	t.Parallel()
	ev := func(id int64, user string, mod ...func(*pairing.OutboxEvent)) pairing.OutboxEvent {
		e := pairing.OutboxEvent{SiteEvent: pairing.SiteEvent{ID: id, UserID: user}}
		for _, m := range mod {
			m(&e)
		}
		return e
	}
	delivered := func(e *pairing.OutboxEvent) { e.DeliveredAt = t0 }
	failed := func(e *pairing.OutboxEvent) { e.FailedAt = t0 }
	later := func(e *pairing.OutboxEvent) { e.NextAttemptAt = t0.Add(time.Minute) }
	leased := func(e *pairing.OutboxEvent) { e.LeaseUntil = t0.Add(time.Minute) }
	events := []pairing.OutboxEvent{
		ev(7, "C"),
		ev(1, "A", delivered), ev(2, "A"), ev(3, "A"), // 2 is next for A
		ev(4, "B", later), ev(5, "B"), // B waits for 4's retry
		ev(6, "C", leased),                                          // C's 6 is in flight, 7 waits (listed first: order is by id)
		ev(8, ""), ev(9, "", leased), ev(10, "", later), ev(11, ""), // no user: independent
		ev(12, "D", failed), ev(13, "D"), // D gave up on 12: 13 goes
	}
	if got := pairing.Deliverable(events, t0, 100); !slices.Equal(got, []int64{2, 8, 11, 13}) {
		t.Fatalf("deliverable %v", got)
	}
	if got := pairing.Deliverable(events, t0, 2); !slices.Equal(got, []int64{2, 8}) {
		t.Fatalf("limit 2: %v", got)
	}
	if got := pairing.Deliverable(events, t0.Add(time.Minute), 100); !slices.Equal(got, []int64{2, 4, 6, 8, 9, 10, 11, 13}) {
		t.Fatalf("a minute later %v", got)
	}
}
