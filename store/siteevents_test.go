package store_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func addEvent(t *testing.T, st *store.Store, user string, at time.Time) {
	t.Helper()
	if err := st.AddSiteEvent(ctx, pairing.SiteEvent{Type: pairing.EventLinkCreated, UserID: user, Payload: []byte(`{"by":"site"}`), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
}

func ids(evs []pairing.OutboxEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func claim(t *testing.T, st *store.Store, owner string, now time.Time, limit int) []pairing.OutboxEvent {
	t.Helper()
	evs, err := st.ClaimSiteEvents(ctx, owner, now, time.Minute, limit)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestSiteEventClaimOrderPerUser(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		for _, u := range []string{"U", "U", "V", "", ""} {
			addEvent(t, st, u, t0)
		}
		// 1=U 2=U 3=V 4=- 5=-: U's second waits for its first.
		got := claim(t, st, "a", t0, 10)
		if !slices.Equal(ids(got), []int64{1, 3, 4, 5}) || got[0].Attempts != 1 || got[0].LeaseOwner != "a" {
			t.Fatalf("first claim %v %+v", ids(got), got)
		}
		if string(got[0].Payload) != `{"by":"site"}` || got[0].UserID != "U" || !got[0].CreatedAt.Equal(t0) {
			t.Fatalf("claimed event %+v", got[0])
		}
		for _, id := range []int64{3, 4, 5} {
			if err := st.MarkSiteEventDelivered(ctx, id, t0); err != nil {
				t.Fatal(err)
			}
		}
		// 1 fails and retries in 10s: 2 still waits, even after the lease.
		if err := st.RetrySiteEvent(ctx, 1, "a", t0.Add(10*time.Second), "HTTP 500"); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, st, "a", t0.Add(5*time.Second), 10); len(got) != 0 {
			t.Fatalf("claimed %v while 1 waits for its retry", ids(got))
		}
		got = claim(t, st, "b", t0.Add(10*time.Second), 10)
		if !slices.Equal(ids(got), []int64{1}) || got[0].Attempts != 2 {
			t.Fatalf("retry claim %v %+v", ids(got), got)
		}
		e, _ := st.SiteEventDelivery(ctx, 1)
		if e.LastError != "HTTP 500" || e.LeaseOwner != "b" {
			t.Fatalf("state %+v", e)
		}
		// Giving up on 1 frees 2.
		if err := st.FailSiteEvent(ctx, 1, "b", t0.Add(11*time.Second), "gone"); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, st, "b", t0.Add(11*time.Second), 10); !slices.Equal(ids(got), []int64{2}) {
			t.Fatalf("after giving up on 1: %v", ids(got))
		}
		e, _ = st.SiteEventDelivery(ctx, 1)
		if e.FailedAt.IsZero() || !e.DeliveredAt.IsZero() {
			t.Fatalf("1 %+v", e)
		}
	})
}

func TestSiteEventLeaseExpiry(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		addEvent(t, st, "U", t0)
		if got := claim(t, st, "a", t0, 10); len(got) != 1 {
			t.Fatalf("claim %v", ids(got))
		}
		if got := claim(t, st, "b", t0.Add(59*time.Second), 10); len(got) != 0 {
			t.Fatalf("claimed a leased event: %v", ids(got))
		}
		// a crashed: the lease ends, b takes over.
		got := claim(t, st, "b", t0.Add(time.Minute), 10)
		if len(got) != 1 || got[0].Attempts != 2 || got[0].LeaseOwner != "b" {
			t.Fatalf("after the lease %+v", got)
		}
		// a comes back late: its failure no longer changes b's claim.
		if err := st.RetrySiteEvent(ctx, 1, "a", t0.Add(time.Hour), "late"); err != nil {
			t.Fatal(err)
		}
		if err := st.FailSiteEvent(ctx, 1, "a", t0, "late"); err != nil {
			t.Fatal(err)
		}
		e, _ := st.SiteEventDelivery(ctx, 1)
		if e.LeaseOwner != "b" || !e.FailedAt.IsZero() || e.LastError != "" {
			t.Fatalf("a's stale claim changed the row: %+v", e)
		}
		if err := st.MarkSiteEventDelivered(ctx, 1, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, st, "c", t0.Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("delivered event claimed again: %v", ids(got))
		}
	})
}

// TestSiteEventClaimExclusive has claimers race over 300 events of 15
// users (and events without user): every event is claimed exactly once,
// and each user's events are claimed in id order, each only after the
// previous one was delivered.
func TestSiteEventClaimExclusive(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		const n = 300
		users := map[int64]string{}
		for i := range n {
			u := ""
			if i%5 != 0 {
				u = fmt.Sprintf("u%d", i%15)
			}
			addEvent(t, st, u, t0)
			users[int64(i+1)] = u
		}
		var mu sync.Mutex
		claims := map[int64]int{}
		delivered := map[string][]int64{}
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", w)
				for idle := 0; idle < 20; {
					evs, err := st.ClaimSiteEvents(ctx, owner, t0, time.Hour, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(evs) == 0 {
						idle++
						time.Sleep(2 * time.Millisecond)
						continue
					}
					idle = 0
					for _, e := range evs {
						mu.Lock()
						claims[e.ID]++
						if u := users[e.ID]; u != "" {
							delivered[u] = append(delivered[u], e.ID)
						}
						mu.Unlock()
						if err := st.MarkSiteEventDelivered(ctx, e.ID, t0); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(claims) != n || len(delivered) != 12 {
			t.Fatalf("%d of %d events claimed", len(claims), n)
		}
		for id, c := range claims {
			if c != 1 {
				t.Fatalf("event %d claimed %d times", id, c)
			}
		}
		for u, got := range delivered {
			if !slices.IsSorted(got) || len(got) != 20 {
				t.Fatalf("user %s: claimed out of order or missing: %v", u, got)
			}
		}
	})
}

// TestSiteEventClaimMatchesRule drives the outbox through random claims,
// deliveries, retries, give-ups and lease expiries, and checks every claim
// against pairing.Deliverable applied to the state read back.
func TestSiteEventClaimMatchesRule(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { claimMatchesRule(t, seed) })
	}
}

func claimMatchesRule(t *testing.T, seed uint64) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		rnd := rand.New(rand.NewPCG(seed, 2))
		users := []string{"", "a", "b", "c", "d"}
		now := t0
		var all []int64
		for step := range 150 {
			if rnd.IntN(3) == 0 {
				addEvent(t, st, users[rnd.IntN(len(users))], now)
				all = append(all, int64(len(all)+1))
			}
			var state []pairing.OutboxEvent
			for _, id := range all {
				e, err := st.SiteEventDelivery(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				state = append(state, e)
			}
			limit := 1 + rnd.IntN(4)
			want := pairing.Deliverable(state, now, limit)
			got := claim(t, st, "o", now, limit)
			if !slices.Equal(ids(got), want) && !(len(want) == 0 && len(got) == 0) {
				t.Fatalf("step %d: claimed %v, rule says %v", step, ids(got), want)
			}
			for _, e := range got {
				switch rnd.IntN(4) {
				case 0:
					_ = st.MarkSiteEventDelivered(ctx, e.ID, now)
				case 1:
					_ = st.RetrySiteEvent(ctx, e.ID, "o", now.Add(time.Duration(rnd.IntN(30))*time.Second), "x")
				case 2:
					_ = st.FailSiteEvent(ctx, e.ID, "o", now, "x")
				default: // the owner vanishes; the lease runs out
				}
			}
			now = now.Add(time.Duration(rnd.IntN(40)) * time.Second)
		}
	})
}

func TestSiteEventsPagesAndPrune(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		for i := range 10 {
			addEvent(t, st, "U", t0.Add(time.Duration(i)*time.Hour))
		}
		var seen []int64
		for after := int64(0); ; {
			page, err := st.SiteEventsAfter(ctx, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				seen = append(seen, e.ID)
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(seen, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
			t.Fatalf("pages gave %v", seen)
		}
		n, err := st.PruneSiteEvents(ctx, t0.Add(4*time.Hour))
		if err != nil || n != 4 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		page, _ := st.SiteEventsAfter(ctx, 0, 100)
		if len(page) != 6 || page[0].ID != 5 {
			t.Fatalf("after prune %d events, first %d", len(page), page[0].ID)
		}
	})
}
