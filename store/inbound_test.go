package store_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func inEv(source, key, group string) pairing.InboundEvent {
	return pairing.InboundEvent{Source: source, Key: key, Group: group, Payload: []byte(`{"k":"` + key + `"}`)}
}

func enqueue(t testing.TB, st *store.Store, at time.Time, evs ...pairing.InboundEvent) int {
	t.Helper()
	n, err := st.EnqueueInbound(ctx, evs, at)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func claimIn(t *testing.T, st *store.Store, owner string, now time.Time, limit int) []pairing.InboundItem {
	t.Helper()
	items, err := st.ClaimInbound(ctx, owner, now, time.Minute, limit)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func keys(items []pairing.InboundItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Key
	}
	return out
}

func TestInboundDuplicateInsertIsNoOp(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		if n := enqueue(t, st, t0, inEv("messenger", "m1", "g"), inEv("messenger", "m2", "g")); n != 2 {
			t.Fatalf("first insert: %d new", n)
		}
		// The same keys again (a platform retry), one new key, and the
		// same key of another source.
		dup := inEv("messenger", "m1", "other-group")
		dup.Payload = []byte("changed")
		if n := enqueue(t, st, t0.Add(time.Hour), dup, inEv("messenger", "m2", "g"), inEv("messenger", "m3", "g"), inEv("telegram:t", "m1", "g")); n != 2 {
			t.Fatalf("second insert: %d new, want 2", n)
		}
		it, err := st.InboundByKey(ctx, "messenger", "m1")
		if err != nil || string(it.Payload) != `{"k":"m1"}` || it.Group != "g" || !it.CreatedAt.Equal(t0) {
			t.Fatalf("first row changed by the duplicate: %+v %v", it, err)
		}
		// A handled row still dedupes.
		items := claimIn(t, st, "a", t0, 10)
		if err := st.FinishInbound(ctx, items[0].ID, t0); err != nil {
			t.Fatal(err)
		}
		if n := enqueue(t, st, t0.Add(35*time.Hour), inEv("messenger", "m1", "g")); n != 0 {
			t.Fatalf("handled row re-inserted: %d", n)
		}
		// A big delivery goes in whole (several statements, one
		// transaction), duplicates inside it too.
		var big []pairing.InboundEvent
		for i := range 450 {
			big = append(big, inEv("telegram:t", fmt.Sprint("u", i%400), fmt.Sprint("c", i%7)))
		}
		if n := enqueue(t, st, t0, big...); n != 400 {
			t.Fatalf("big delivery: %d new, want 400", n)
		}
		if _, err := st.InboundByKey(ctx, "telegram:t", "nope"); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
	})
}

func TestInboundClaimOrderPerGroup(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		// 1=A 2=A 3=B 4=A(other source) 5=B
		enqueue(t, st, t0, inEv("s", "1", "A"), inEv("s", "2", "A"), inEv("s", "3", "B"), inEv("s2", "4", "A"), inEv("s", "5", "B"))
		got := claimIn(t, st, "a", t0, 10)
		if !slices.Equal(keys(got), []string{"1", "3", "4"}) || got[0].Attempts != 1 || got[0].LeaseOwner != "a" ||
			string(got[0].Payload) != `{"k":"1"}` || got[0].Source != "s" || got[0].Group != "A" {
			t.Fatalf("first claim %v %+v", keys(got), got)
		}
		// Nothing more while the heads are in hand.
		if got := claimIn(t, st, "b", t0, 10); len(got) != 0 {
			t.Fatalf("claimed %v while the groups' heads are leased", keys(got))
		}
		// A's head done: A's next comes; B's head retried later keeps B
		// waiting, in order.
		if err := st.FinishInbound(ctx, got0(t, st, "s", "1").ID, t0); err != nil {
			t.Fatal(err)
		}
		if err := st.RetryInbound(ctx, got0(t, st, "s", "3").ID, "a", t0.Add(30*time.Second), "graph 502"); err != nil {
			t.Fatal(err)
		}
		if got := claimIn(t, st, "b", t0, 10); !slices.Equal(keys(got), []string{"2"}) {
			t.Fatalf("second claim %v", keys(got))
		}
		it := got0(t, st, "s", "3")
		if it.LastError != "graph 502" || it.LeaseOwner != "" || !it.NextAttemptAt.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("retried row %+v", it)
		}
		if got := claimIn(t, st, "b", t0.Add(30*time.Second), 10); !slices.Equal(keys(got), []string{"3"}) || got[0].Attempts != 2 {
			t.Fatalf("due retry %v %+v", keys(got), got)
		}
		// A failed head no longer blocks its group.
		if err := st.FailInbound(ctx, got0(t, st, "s", "3").ID, "b", t0.Add(30*time.Second), "gave up"); err != nil {
			t.Fatal(err)
		}
		if got := claimIn(t, st, "c", t0.Add(30*time.Second), 10); !slices.Equal(keys(got), []string{"5"}) {
			t.Fatalf("after failure %v", keys(got))
		}
		if it := got0(t, st, "s", "3"); it.FailedAt.IsZero() || it.LastError != "gave up" {
			t.Fatalf("failed row %+v", it)
		}
	})
}

func got0(t *testing.T, st *store.Store, source, key string) pairing.InboundItem {
	t.Helper()
	it, err := st.InboundByKey(ctx, source, key)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestInboundLeaseExpiryAndOwner(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		enqueue(t, st, t0, inEv("s", "1", "A"))
		first := claimIn(t, st, "a", t0, 1)
		if len(first) != 1 {
			t.Fatal("not claimed")
		}
		if got := claimIn(t, st, "b", t0.Add(59*time.Second), 1); len(got) != 0 {
			t.Fatal("claimed while leased")
		}
		// a crashed: the lease runs out and b takes the row.
		again := claimIn(t, st, "b", t0.Add(time.Minute), 1)
		if len(again) != 1 || again[0].Attempts != 2 || again[0].LeaseOwner != "b" {
			t.Fatalf("re-claim %+v", again)
		}
		// a's late retry changes nothing: b holds the lease.
		if err := st.RetryInbound(ctx, first[0].ID, "a", t0.Add(time.Hour), "late"); err != nil {
			t.Fatal(err)
		}
		if err := st.FailInbound(ctx, first[0].ID, "a", t0, "late"); err != nil {
			t.Fatal(err)
		}
		if it := got0(t, st, "s", "1"); it.LeaseOwner != "b" || it.LastError != "" || !it.FailedAt.IsZero() {
			t.Fatalf("a changed b's row: %+v", it)
		}
		if err := st.FinishInbound(ctx, first[0].ID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if it := got0(t, st, "s", "1"); it.DoneAt.IsZero() || it.LeaseOwner != "" {
			t.Fatalf("not done: %+v", it)
		}
		if got := claimIn(t, st, "c", t0.Add(time.Hour), 1); len(got) != 0 {
			t.Fatal("done row claimed")
		}
	})
}

// Six claimers race over 300 rows in 15 groups: every row is claimed
// exactly once (the lease outlives the test), and each group's rows are
// claimed in id order, never two of a group in hand at once.
func TestInboundClaimExclusive(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		const n = 300
		var evs []pairing.InboundEvent
		for i := range n {
			evs = append(evs, inEv("s", fmt.Sprintf("%04d", i), fmt.Sprint("g", i%15)))
		}
		enqueue(t, st, t0, evs...)
		var (
			mu      sync.Mutex
			claims  = map[string]int{}
			order   = map[string][]string{}
			inHand  = map[string]bool{}
			overlap bool
			wg      sync.WaitGroup
		)
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprint("w", w)
				for idle := 0; idle < 30; {
					items, err := st.ClaimInbound(ctx, owner, t0, time.Hour, 4)
					if err != nil {
						t.Error(err)
						return
					}
					if len(items) == 0 {
						idle++
						time.Sleep(2 * time.Millisecond)
						continue
					}
					idle = 0
					mu.Lock()
					for _, it := range items {
						claims[it.Key]++
						order[it.Group] = append(order[it.Group], it.Key)
						if inHand[it.Group] {
							overlap = true
						}
						inHand[it.Group] = true
					}
					mu.Unlock()
					for _, it := range items {
						mu.Lock()
						inHand[it.Group] = false
						mu.Unlock()
						if err := st.FinishInbound(ctx, it.ID, t0); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(claims) != n || overlap {
			t.Fatalf("claimed %d distinct rows of %d; overlap %v", len(claims), n, overlap)
		}
		for k, c := range claims {
			if c != 1 {
				t.Fatalf("row %s claimed %d times", k, c)
			}
		}
		for g, ks := range order {
			if !slices.IsSorted(ks) || len(ks) != n/15 {
				t.Fatalf("group %s claimed out of order: %v", g, ks)
			}
		}
	})
}

func TestInboundPrune(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		enqueue(t, st, t0, inEv("s", "done", "A"), inEv("s", "failed", "B"), inEv("s", "pending", "C"))
		enqueue(t, st, t0.Add(40*time.Hour), inEv("s", "recent", "D"))
		for _, it := range claimIn(t, st, "a", t0.Add(40*time.Hour), 10) {
			switch it.Key {
			case "done", "recent":
				_ = st.FinishInbound(ctx, it.ID, t0)
			case "failed":
				_ = st.FailInbound(ctx, it.ID, "a", t0, "x")
			}
		}
		n, err := st.PruneInbound(ctx, t0.Add(36*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("pruned %d: %v", n, err)
		}
		for key, want := range map[string]bool{"done": false, "failed": false, "pending": true, "recent": true} {
			_, err := st.InboundByKey(ctx, "s", key)
			if (err == nil) != want {
				t.Fatalf("%s kept=%v", key, err == nil)
			}
		}
	})
}
