package pairing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// zeroRand makes the jitter deterministic: every delay is half its backoff.
type zeroRand struct{}

func (zeroRand) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// faultyInbound is the real store, whose EnqueueInbound fails with
// failWith when set.
type faultyInbound struct {
	*store.Store
	failWith error
}

func (f *faultyInbound) EnqueueInbound(ctx context.Context, evs []pairing.InboundEvent, now time.Time) (int, error) {
	if f.failWith != nil {
		return 0, f.failWith
	}
	return f.Store.EnqueueInbound(ctx, evs, now)
}

type inboundEnv struct {
	t     *testing.T
	q     *faultyInbound
	clock *pairingtest.Clock
	w     *pairing.InboundWorker
	logs  *bytes.Buffer
	mu    sync.Mutex
	seen  []string
	keys  []pairing.InboundEvent // accepted, in order
}

func newInboundEnv(t *testing.T, st *store.Store, cfg pairing.InboundWorkerConfig, h func(payload string) error) *inboundEnv {
	t.Helper()
	e := &inboundEnv{t: t, q: &faultyInbound{Store: st}, clock: pairingtest.NewClock(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)), logs: &bytes.Buffer{}}
	cfg.Clock, cfg.Rand = e.clock, zeroRand{}
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, nil))
	e.w = pairing.NewInboundWorker(e.q, cfg)
	e.w.Handle("src", func(ctx context.Context, payload []byte) error {
		e.mu.Lock()
		e.seen = append(e.seen, string(payload))
		e.mu.Unlock()
		return h(string(payload))
	})
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *inboundEnv) accept(t *testing.T, evs ...pairing.InboundEvent) {
	t.Helper()
	if err := e.w.Accept(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.keys = append(e.keys, evs...)
	e.mu.Unlock()
}

// rows reads the accepted events' rows from the store, in accept order.
func (e *inboundEnv) rows() []pairing.InboundItem {
	e.t.Helper()
	e.mu.Lock()
	keys := slices.Clone(e.keys)
	e.mu.Unlock()
	out := make([]pairing.InboundItem, len(keys))
	for i, k := range keys {
		it, err := e.q.InboundByKey(context.Background(), k.Source, k.Key)
		if err != nil {
			e.t.Fatalf("row %s/%s: %v", k.Source, k.Key, err)
		}
		out[i] = it
	}
	return out
}

func (e *inboundEnv) handled() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seen)
}

func ev(key, group string) pairing.InboundEvent {
	return pairing.InboundEvent{Source: "src", Key: key, Group: group, Payload: []byte(key)}
}

func TestInboundRetriesWithBackoffUntilMaxAge(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		var mu sync.Mutex
		fails := map[string]int{"a": 2, "b": 1000}
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{MaxAge: time.Hour, RetryInitial: 2 * time.Second, RetryMax: 5 * time.Minute},
			func(p string) error {
				mu.Lock()
				defer mu.Unlock()
				if fails[p] > 0 {
					fails[p]--
					return errors.New("graph 502")
				}
				return nil
			})
		e.accept(t, ev("a", "1"), ev("b", "2"))
		ctx := context.Background()
		if n, _ := e.w.Drain(ctx); n != 2 {
			t.Fatalf("first pass handled %d", n)
		}
		rows := e.rows()
		// Jitter 0: half the backoff. 1st failure: 1s later.
		if !rows[0].NextAttemptAt.Equal(e.clock.Now().Add(time.Second)) || rows[0].LastError != "graph 502" {
			t.Fatalf("after the first failure %+v", rows[0])
		}
		if n, _ := e.w.Drain(ctx); n != 0 {
			t.Fatal("a retry ran before it was due")
		}
		e.clock.Advance(time.Second)
		e.w.Drain(ctx) // a fails again: 2s
		if r := e.rows()[0]; !r.NextAttemptAt.Equal(e.clock.Now().Add(2*time.Second)) || r.Attempts != 2 {
			t.Fatalf("after the second failure %+v", r)
		}
		e.clock.Advance(2 * time.Second)
		e.w.Drain(ctx)
		if r := e.rows()[0]; r.DoneAt.IsZero() {
			t.Fatalf("a not done after recovering: %+v", r)
		}
		// b keeps failing: tried with growing waits, then given up at the
		// max age, with one error log.
		for range 200 {
			e.clock.Advance(5 * time.Minute)
			e.w.Drain(ctx)
		}
		b := e.rows()[1]
		if b.FailedAt.IsZero() || b.Attempts < 12 || b.Attempts > 25 {
			t.Fatalf("b: %+v", b)
		}
		if n := strings.Count(e.logs.String(), "giving up"); n != 1 {
			t.Fatalf("%d give-up logs", n)
		}
	})
}

func TestInboundPanicAndDrop(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{}, func(p string) error {
			switch p {
			case "panic":
				panic("boom " + p)
			case "bad":
				return fmt.Errorf("payload: %w", pairing.ErrInboundDropped)
			}
			return nil
		})
		e.accept(t, ev("panic", "1"), ev("bad", "2"), ev("ok", "3"),
			pairing.InboundEvent{Source: "unknown", Key: "x", Group: "g", Payload: []byte("x")})
		e.w.Drain(context.Background())
		rows := e.rows()
		if rows[0].DoneAt.IsZero() == false || rows[0].NextAttemptAt.IsZero() || rows[0].LastError != "inbound handler panicked" {
			t.Fatalf("panic: %+v", rows[0])
		}
		if rows[1].FailedAt.IsZero() || rows[2].DoneAt.IsZero() {
			t.Fatalf("drop/ok: %+v %+v", rows[1], rows[2])
		}
		if rows[3].NextAttemptAt.IsZero() || !strings.Contains(rows[3].LastError, "no handler") {
			t.Fatalf("unknown source: %+v", rows[3])
		}
	})
}

func TestInboundOrderPerGroupUnderRun(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		var mu sync.Mutex
		inHand := map[string]int{}
		overlap := false
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{Workers: 4, PollInterval: time.Hour}, func(p string) error {
			g := p[:1]
			mu.Lock()
			inHand[g]++
			if inHand[g] > 1 {
				overlap = true
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inHand[g]--
			mu.Unlock()
			return nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.w.Run(ctx) }()
		var want []string
		for i := range 60 {
			k := fmt.Sprintf("%c%02d", 'a'+i%5, i)
			want = append(want, k)
			e.accept(t, pairing.InboundEvent{Source: "src", Key: k, Group: k[:1], Payload: []byte(k)})
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(e.handled()) < 60 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		got := e.handled()
		if len(got) != 60 || overlap {
			t.Fatalf("handled %d of 60 (poll interval 1h: the nudges must wake the worker); overlap %v", len(got), overlap)
		}
		for g := 'a'; g < 'f'; g++ {
			var gotG, wantG []string
			for _, k := range got {
				if k[0] == byte(g) {
					gotG = append(gotG, k)
				}
			}
			for _, k := range want {
				if k[0] == byte(g) {
					wantG = append(wantG, k)
				}
			}
			if !slices.Equal(gotG, wantG) {
				t.Fatalf("group %c out of order: %v", g, gotG)
			}
		}
	})
}

// On shutdown a handler in hand gets the grace, then its context ends and
// its row is released at once (not left leased), attempt counted.
func TestInboundShutdownReleases(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		started := make(chan struct{})
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{Grace: 50 * time.Millisecond}, func(p string) error {
			close(started)
			time.Sleep(200 * time.Millisecond) // longer than the grace
			return errors.New("unreachable")
		})
		var handlerCtxErr error
		e.w.Handle("src2", func(ctx context.Context, _ []byte) error {
			<-ctx.Done()
			handlerCtxErr = ctx.Err()
			return ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- e.w.Run(ctx) }()
		e.accept(t, ev("slow", "1"), pairing.InboundEvent{Source: "src2", Key: "k", Group: "g"})
		<-started
		began := time.Now()
		cancel()
		<-done
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("Run took %v to stop", d)
		}
		if !errors.Is(handlerCtxErr, context.Canceled) {
			t.Fatalf("handler context after the grace: %v", handlerCtxErr)
		}
		for _, r := range e.rows() {
			if r.LeaseOwner != "" || !r.DoneAt.IsZero() || !r.FailedAt.IsZero() || !r.NextAttemptAt.Equal(e.clock.Now()) {
				t.Fatalf("row not released: %+v", r)
			}
		}
	})
}

func TestInboundAcceptFailure(t *testing.T) {
	t.Parallel()
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{}, func(string) error { return nil })
		e.q.failWith = pairing.ErrUnavailable
		if err := e.w.Accept(context.Background(), []pairing.InboundEvent{ev("a", "1")}); !errors.Is(err, pairing.ErrUnavailable) {
			t.Fatalf("accept: %v", err)
		}
		if _, err := e.q.InboundByKey(context.Background(), "src", "a"); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("stored: %v", err)
		}
	})
}

// An event whose id or group a database cannot keep as text (a NUL, bytes
// that are not UTF-8: PostgreSQL refuses both) is dropped at intake with a
// log line; the good events of the same delivery are stored, and the
// delivery is not refused.
func TestInboundAcceptDropsUnstorableIDs(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{}, func(string) error { return nil })
		batch := []pairing.InboundEvent{ev("good-1", "1"), ev("m\x00id", "1"), {Source: "src", Key: "k", Group: "g\xff"}, ev("good-2", "2")}
		if err := e.w.Accept(ctx, batch); err != nil {
			t.Fatalf("accept: %v", err)
		}
		for _, k := range []string{"good-1", "good-2"} {
			if _, err := e.q.InboundByKey(ctx, "src", k); err != nil {
				t.Fatalf("%s not stored: %v", k, err)
			}
		}
		for _, k := range []string{"m\x00id", "k"} {
			if _, err := e.q.InboundByKey(ctx, "src", k); !errors.Is(err, pairing.ErrNotFound) && !errors.Is(err, pairing.ErrInvalid) {
				t.Fatalf("%q stored: %v", k, err)
			}
		}
		if !strings.Contains(e.logs.String(), "cannot be stored dropped") {
			t.Fatalf("no log line: %s", e.logs.String())
		}
	})
}

// A handler that meets bad input (ErrInvalid, as the store answers text
// PostgreSQL cannot keep) is not retried for an hour: the event fails at
// once.
func TestInboundInvalidInputIsDroppedNotRetried(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{}, func(string) error {
			return fmt.Errorf("profile: %w", pairing.ErrInvalid)
		})
		if err := e.w.Accept(ctx, []pairing.InboundEvent{ev("bad", "1")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.w.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		it, err := e.q.InboundByKey(ctx, "src", "bad")
		if err != nil || it.FailedAt.IsZero() || it.Attempts != 1 {
			t.Fatalf("row %+v, %v", it, err)
		}
	})
}
