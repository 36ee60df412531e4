package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func TestPruneAuditInBatches(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		cut := t0.Add(time.Hour)
		add := func(n int, at time.Time, action string) {
			for range n {
				if err := st.AddAudit(ctx, pairing.AuditEvent{At: at, Action: action}); err != nil {
					t.Fatal(err)
				}
			}
		}
		add(23, t0, "old")                         // before the cut: pruned
		add(4, cut, "at_cut")                      // exactly at the cut: kept
		add(5, cut.Add(time.Minute), "recent")     // after it: kept
		add(2, t0.Add(30*time.Minute), "old_late") // interleaved ids, before the cut

		// Batches of 10: 25 old rows go in statements of 10, 10 and 5.
		n, err := st.PruneAudit(ctx, cut, 10)
		if err != nil || n != 25 {
			t.Fatalf("pruned %d (%v), want 25", n, err)
		}
		left, err := st.AuditEvents(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 9 {
			t.Fatalf("%d rows left, want 9", len(left))
		}
		for _, e := range left {
			if e.At.Before(cut) {
				t.Fatalf("row of %s at %v survived", e.Action, e.At)
			}
		}
		// Nothing more to do; a batch that divides the backlog exactly
		// ends with an empty statement.
		if n, err := st.PruneAudit(ctx, cut, 10); err != nil || n != 0 {
			t.Fatalf("second prune: %d %v", n, err)
		}
		add(20, t0, "old")
		if n, err := st.PruneAudit(ctx, cut, 10); err != nil || n != 20 {
			t.Fatalf("exact multiple: %d %v", n, err)
		}
		// The default batch.
		add(3, t0, "old")
		if n, err := st.PruneAudit(ctx, cut, 0); err != nil || n != 3 {
			t.Fatalf("default batch: %d %v", n, err)
		}
	})
}

func TestPruneAuditStopsWhenCancelled(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		for range 5 {
			if err := st.AddAudit(ctx, pairing.AuditEvent{At: t0, Action: "old"}); err != nil {
				t.Fatal(err)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := st.PruneAudit(cctx, t0.Add(time.Hour), 2); err == nil {
			t.Fatal("a cancelled prune reported success")
		}
	})
}
