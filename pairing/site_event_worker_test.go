package pairing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// fakeSender fails each event's first fails[id] tries, then accepts.
type fakeSender struct {
	mu    sync.Mutex
	clock *pairingtest.Clock
	fails map[int64]int
	err   error // what a failure returns; default a plain error
	tries []try
	block chan struct{} // when set, a send waits for it or for ctx
	// sending, when set, is told (without waiting) that a send began.
	sending chan struct{}
}

type try struct {
	id   int64
	at   time.Time
	ok   bool
	body string
}

func (f *fakeSender) SendEvent(ctx context.Context, e pairing.SiteEvent, body []byte) error {
	if f.sending != nil {
		select {
		case f.sending <- struct{}{}:
		default:
		}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := f.fails[e.ID] > 0
	if fail {
		f.fails[e.ID]--
	}
	f.tries = append(f.tries, try{id: e.ID, at: f.clock.Now(), ok: !fail, body: string(body)})
	if !fail {
		return nil
	}
	if f.err != nil {
		return f.err
	}
	return errors.New("HTTP 500")
}

func (f *fakeSender) delivered() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for _, t := range f.tries {
		if t.ok {
			out = append(out, t.id)
		}
	}
	return out
}

type dispatchEnv struct {
	t      *testing.T
	store  *store.Store
	clock  *pairingtest.Clock
	sender *fakeSender
	d      *pairing.SiteEventWorker
}

// newDispatchEnv writes one event per user (ids from 1) to a real store.
func newDispatchEnv(t *testing.T, st *store.Store, users ...string) *dispatchEnv {
	clk := pairingtest.NewClock(t0)
	for _, u := range users {
		if err := st.AddSiteEvent(context.Background(), pairing.SiteEvent{Type: pairing.EventLinkCreated, UserID: u, Payload: []byte(`{"by":"site"}`), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	s := &fakeSender{clock: clk, fails: map[int64]int{}}
	d := pairing.NewSiteEventWorker(st, s, pairing.SiteEventWorkerConfig{Clock: clk, Owner: "test", Lease: time.Minute, Grace: 50 * time.Millisecond})
	return &dispatchEnv{t: t, store: st, clock: clk, sender: s, d: d}
}

func (e *dispatchEnv) pass() int {
	e.t.Helper()
	n, err := e.d.RunOnce(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *dispatchEnv) state(id int64) pairing.OutboxEvent {
	ev, err := e.store.SiteEventDelivery(context.Background(), id)
	if err != nil {
		e.t.Fatalf("event %d: %v", id, err)
	}
	return ev
}

func TestSiteEventWorkerRetriesInOrderPerUser(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newDispatchEnv(t, st, "U", "U", "U", "V", "")
		u1, u2, u3, v, none := int64(1), int64(2), int64(3), int64(4), int64(5)
		e.sender.fails[u1] = 2

		if n := e.pass(); n != 3 { // U's first, V's, and the one without user
			t.Fatalf("first pass claimed %d", n)
		}
		next := e.state(u1).NextAttemptAt
		if d := next.Sub(t0); d < 2500*time.Millisecond || d > 5*time.Second {
			t.Fatalf("first retry in %v, want 2.5s..5s", d)
		}
		e.clock.Advance(2 * time.Second)
		if n := e.pass(); n != 0 {
			t.Fatalf("claimed %d before U's first is due (U's second must wait)", n)
		}
		e.clock.Advance(next.Sub(e.clock.Now()))
		if n := e.pass(); n != 1 { // U's first again; fails again
			t.Fatalf("second try claimed %d", n)
		}
		next2 := e.state(u1).NextAttemptAt
		if d := next2.Sub(e.clock.Now()); d < 5*time.Second || d > 10*time.Second {
			t.Fatalf("second retry in %v, want 5s..10s", d)
		}
		e.clock.Advance(next2.Sub(e.clock.Now()))
		for e.pass() > 0 {
		}
		if got := e.sender.delivered(); !slices.Equal(got, []int64{v, none, u1, u2, u3}) && !slices.Equal(got, []int64{none, v, u1, u2, u3}) {
			t.Fatalf("delivered %v", got)
		}
		if s := e.state(u1); s.Attempts != 3 || s.DeliveredAt.IsZero() {
			t.Fatalf("U's first: %+v", s)
		}
		// The body is the event's JSON.
		want, _ := pairing.EventBody(e.state(u2).SiteEvent)
		for _, tr := range e.sender.tries {
			if tr.id == u2 && tr.body != string(want) {
				t.Fatalf("body %s, want %s", tr.body, want)
			}
		}
	})
}

func TestSiteEventWorkerGivesUpAfter24h(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newDispatchEnv(t, st, "U", "U")
		e.sender.fails[1] = 1 << 30 // the site never takes it
		var gaps []time.Duration
		last := t0
		for i := 0; e.state(1).FailedAt.IsZero(); i++ {
			if i > 100 {
				t.Fatal("never gave up")
			}
			if n := e.pass(); n != 1 {
				t.Fatalf("pass %d claimed %d (U's second must wait)", i, n)
			}
			if next := e.state(1).NextAttemptAt; !next.IsZero() && e.state(1).FailedAt.IsZero() {
				gaps = append(gaps, next.Sub(last))
				e.clock.Advance(next.Sub(e.clock.Now()))
				last = next
			}
		}
		s := e.state(1)
		if s.FailedAt.Before(t0.Add(24*time.Hour)) || s.LastError != "HTTP 500" {
			t.Fatalf("gave up at %v (%q), before 24h", s.FailedAt, s.LastError)
		}
		if s.Attempts < 25 || s.Attempts > 45 {
			t.Fatalf("%d tries in 24h", s.Attempts)
		}
		for i, g := range gaps {
			if g > time.Hour {
				t.Fatalf("gap %d is %v, above the 1h cap", i, g)
			}
		}
		// Giving up frees U's next event.
		if n := e.pass(); n != 1 || !slices.Equal(e.sender.delivered(), []int64{2}) {
			t.Fatalf("after giving up: claimed %d, delivered %v", n, e.sender.delivered())
		}
	})
}

func TestSiteEventWorkerStopsOnGone(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newDispatchEnv(t, st, "U", "U")
		e.sender.fails[1] = 1
		e.sender.err = fmt.Errorf("HTTP 410: %w", pairing.ErrEventRejected)
		e.pass()
		if s := e.state(1); s.FailedAt.IsZero() || s.Attempts != 1 {
			t.Fatalf("410 not final: %+v", s)
		}
		e.pass()
		if got := e.sender.delivered(); !slices.Equal(got, []int64{2}) {
			t.Fatalf("delivered %v", got)
		}
	})
}

func TestSiteEventWorkerShutdownReleasesClaims(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newDispatchEnv(t, st, "U")
		e.sender.block = make(chan struct{})
		e.sender.sending = make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.d.Run(ctx) }()
		select {
		case <-e.sender.sending:
		case <-time.After(10 * time.Second):
			t.Fatal("the event was never sent")
		}
		if e.state(1).LeaseOwner == "" {
			t.Fatalf("sending without a lease: %+v", e.state(1))
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
		s := e.state(1)
		if !s.LeaseUntil.IsZero() || !s.FailedAt.IsZero() || !s.DeliveredAt.IsZero() {
			t.Fatalf("after shutdown %+v", s)
		}
		// The next start sends it at once, without waiting for the lease.
		close(e.sender.block)
		e.sender.block = nil
		if n := e.pass(); n != 1 || !slices.Equal(e.sender.delivered(), []int64{1}) {
			t.Fatalf("after restart: claimed %d delivered %v", n, e.sender.delivered())
		}
	})
}
