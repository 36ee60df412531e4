package sitehook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api/sitehook"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

var secret = []byte("a-webhook-secret-for-tests")

// receiver is a site: it checks every request's signature and headers,
// fails the first tries of some events (500, or hanging past the
// client's timeout), and records what it accepted.
type receiver struct {
	t     *testing.T
	mu    sync.Mutex
	plan  map[int64][]string // per event: what the first tries get ("500", "hang")
	tries map[int64]int
	// accepted in arrival order, and per user.
	accepted []int64
	byUser   map[string][]int64
	// users maps an event id to its user, to check the order on arrival.
	users map[int64]string
	bad   []string
}

func newReceiver(t *testing.T) *receiver {
	return &receiver{t: t, plan: map[int64][]string{}, tries: map[int64]int{}, byUser: map[string][]int64{}, users: map[int64]string{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := sitehook.Verify(secret, r.Header.Get(sitehook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		rc.fail("signature: %v", err)
		w.WriteHeader(400)
		return
	}
	var ev pairing.EventJSON
	if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get(sitehook.HeaderEventID) != strconv.FormatInt(ev.ID, 10) || r.Header.Get(sitehook.HeaderEventType) != ev.Type {
		rc.fail("bad request for %s: %v", body, err)
		w.WriteHeader(400)
		return
	}
	rc.mu.Lock()
	n := rc.tries[ev.ID]
	rc.tries[ev.ID]++
	user := rc.users[ev.ID]
	if user != "" {
		// In order per user: every earlier event of this user was accepted.
		for id, u := range rc.users {
			if u == user && id < ev.ID && !contains(rc.byUser[user], id) {
				rc.mu.Unlock()
				rc.fail("event %d of %s arrived before %d was accepted", ev.ID, user, id)
				w.WriteHeader(400)
				return
			}
		}
	}
	var action string
	if n < len(rc.plan[ev.ID]) {
		action = rc.plan[ev.ID][n]
	}
	if action == "" {
		if contains(rc.accepted, ev.ID) {
			rc.bad = append(rc.bad, fmt.Sprintf("event %d accepted twice", ev.ID))
		}
		rc.accepted = append(rc.accepted, ev.ID)
		if user != "" {
			rc.byUser[user] = append(rc.byUser[user], ev.ID)
		}
	}
	rc.mu.Unlock()
	switch action {
	case "500":
		w.WriteHeader(500)
	case "hang":
		select { // past the client's timeout: it gives up and retries
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	default:
		w.WriteHeader(204)
	}
}

func (rc *receiver) fail(format string, a ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.bad = append(rc.bad, fmt.Sprintf(format, a...))
}

func contains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSiteEventWorkersToReceiver runs two site event workers (two instances) over one
// store against a receiver that fails some first tries: every event
// arrives, signed, in order per user, and is accepted exactly once.
func TestSiteEventWorkersToReceiver(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		rc := newReceiver(t)
		srv := httptest.NewServer(rc)
		defer srv.Close()
		ctx := context.Background()
		users := []string{"", "ann", "bob", "cid", "ann", "bob", "", "ann", "cid", "ann", "", "bob"}
		for i, u := range users {
			id := int64(i + 1)
			rc.users[id] = u
			if err := st.AddSiteEvent(ctx, pairing.SiteEvent{Type: pairing.EventLinkCreated, UserID: u, Payload: []byte(`{"by":"site"}`), CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		rc.plan[2] = []string{"500", "500"}  // ann's first fails twice: ann's later events wait
		rc.plan[3] = []string{"hang"}        // bob's first times out once
		rc.plan[7] = []string{"500", "hang"} // no user: nobody waits for it
		rc.plan[10] = []string{"500", "500", "500"}

		client, err := sitehook.New(srv.URL+"/hooks/pairingd?token=url-credential", secret, 2*time.Second) // generous: a slow CI machine must not turn an accepted POST into a retry
		if err != nil {
			t.Fatal(err)
		}
		logs := &strings.Builder{}
		var logMu sync.Mutex
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range 2 {
			d := pairing.NewSiteEventWorker(st, client, pairing.SiteEventWorkerConfig{
				Policy:       pairing.RetryPolicy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, RetryFor: time.Hour},
				Lease:        5 * time.Second,
				PollInterval: 10 * time.Millisecond,
				Owner:        fmt.Sprintf("instance-%d", i),
				Logger:       logger(&logMu, logs),
			})
			wg.Add(1)
			go func() { defer wg.Done(); _ = d.Run(runCtx) }()
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			rc.mu.Lock()
			n := len(rc.accepted)
			rc.mu.Unlock()
			if n >= len(users) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The receiver counts an event before its answer reaches the
		// site event worker: wait until every delivery is recorded too, or a
		// shutdown in between records "interrupted" (and the event is
		// sent again after a restart: at least once).
		for id := int64(1); id <= int64(len(users)) && time.Now().Before(deadline); {
			if e, err := st.SiteEventDelivery(ctx, id); err == nil && !e.DeliveredAt.IsZero() {
				id++
				continue
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wg.Wait()

		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.bad) > 0 {
			t.Fatalf("receiver saw problems: %v", rc.bad)
		}
		if len(rc.accepted) != len(users) {
			t.Fatalf("accepted %v, want all %d events", rc.accepted, len(users))
		}
		for id := int64(1); id <= int64(len(users)); id++ {
			if !contains(rc.accepted, id) {
				t.Fatalf("event %d never accepted: %v", id, rc.accepted)
			}
			if want := len(rc.plan[id]) + 1; rc.tries[id] != want {
				t.Fatalf("event %d tried %d times, want %d", id, rc.tries[id], want)
			}
			e, err := st.SiteEventDelivery(ctx, id)
			if err != nil || e.DeliveredAt.IsZero() || e.Attempts != len(rc.plan[id])+1 {
				t.Fatalf("event %d state %+v %v", id, e, err)
			}
		}
		for u, got := range rc.byUser {
			for i := 1; i < len(got); i++ {
				if got[i] < got[i-1] {
					t.Fatalf("%s's events accepted out of order: %v", u, got)
				}
			}
		}
		logMu.Lock()
		defer logMu.Unlock()
		for _, secretText := range []string{"url-credential", string(secret), "/hooks/pairingd"} {
			if strings.Contains(logs.String(), secretText) {
				t.Fatalf("the log holds %q:\n%s", secretText, logs.String())
			}
		}
		if !strings.Contains(logs.String(), "HTTP 500") || !strings.Contains(logs.String(), "timeout") {
			t.Fatalf("failures not logged:\n%s", logs.String())
		}
	})
}

func TestClientAnswers(t *testing.T) {
	status := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == 302 {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	c, err := sitehook.New(srv.URL, secret, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ev := pairing.SiteEvent{ID: 1, Type: "link.created"}
	for _, s := range []int{200, 201, 204} {
		status = s
		if err := c.SendEvent(context.Background(), ev, []byte("{}")); err != nil {
			t.Fatalf("%d: %v", s, err)
		}
	}
	for _, s := range []int{302, 400, 404, 429, 500, 503} {
		status = s
		err := c.SendEvent(context.Background(), ev, []byte("{}"))
		if err == nil || errors.Is(err, pairing.ErrEventRejected) || err.Error() != fmt.Sprintf("HTTP %d", s) {
			t.Fatalf("%d: %v", s, err)
		}
	}
	status = 410
	if err := c.SendEvent(context.Background(), ev, []byte("{}")); !errors.Is(err, pairing.ErrEventRejected) {
		t.Fatalf("410: %v", err)
	}
	// A connection error names no URL.
	dead, _ := sitehook.New("http://127.0.0.1:1/hook?token=sekrit", secret, time.Second)
	if err := dead.SendEvent(context.Background(), ev, []byte("{}")); err == nil || strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "/hook") {
		t.Fatalf("connection error %v", err)
	}
	for _, bad := range []struct{ url, secret string }{{"ftp://x/y", string(secret)}, {"/relative", string(secret)}, {"https://x/y", "short"}} {
		if _, err := sitehook.New(bad.url, []byte(bad.secret), time.Second); err == nil {
			t.Fatalf("New(%q, %q) accepted", bad.url, bad.secret)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func logger(mu *sync.Mutex, w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestHangingSiteBlocksNoWrites: while every POST hangs until its timeout,
// the service's writes (new events, as the REST API makes them) go through
// at once: sends run outside any transaction.
func TestHangingSiteBlocksNoWrites(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		hang := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(hang)
		ctx := context.Background()
		client, err := sitehook.New(srv.URL, secret, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		d := pairing.NewSiteEventWorker(st, client, pairing.SiteEventWorkerConfig{PollInterval: 5 * time.Millisecond, Workers: 8})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		for i := range 20 {
			start := time.Now()
			err := st.Tx(ctx, func(r pairing.Repo) error {
				return r.AddSiteEvent(ctx, pairing.SiteEvent{Type: pairing.EventLeadBlocked, UserID: fmt.Sprint("u", i), Payload: []byte("{}"), CreatedAt: time.Now()})
			})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("write %d took %v while the site hangs", i, took)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The site event worker claims (and is stuck on) events meanwhile. On a
		// loaded machine its first claim may come after the writes: wait
		// for it rather than assume it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			e, err := st.SiteEventDelivery(ctx, 1)
			if err == nil && e.Attempts > 0 && e.DeliveredAt.IsZero() {
				break
			}
			if err != nil || !e.DeliveredAt.IsZero() || time.Now().After(deadline) {
				t.Fatalf("event 1 %+v %v", e, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
