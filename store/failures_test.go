package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func stats(t *testing.T, st *store.Store) pairing.QueueStats {
	t.Helper()
	q, err := st.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// queueAt stores a message for user u with one queued delivery to lead,
// created at at.
func queueAt(t *testing.T, st *store.Store, u string, lead int64, at time.Time) pairing.Delivery {
	t.Helper()
	m := pairing.Message{UserID: u, PersonID: 1, Text: "hi", CreatedAt: at, Deliveries: []pairing.Delivery{{
		LeadID: lead, Channel: "telegram", ExternalID: "x", Status: pairing.DeliveryQueued, NextAttemptAt: at, CreatedAt: at, UpdatedAt: at}}}
	if err := st.Tx(ctx, func(r pairing.Repo) error { return r.CreateMessage(ctx, &m) }); err != nil {
		t.Fatal(err)
	}
	return m.Deliveries[0]
}

func TestQueueStatsAndDeliveryRetry(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		if q := stats(t, st); q != (pairing.QueueStats{}) {
			t.Fatalf("empty database: %+v", q)
		}
		a := queueAt(t, st, "u1", 10, t0)
		b := queueAt(t, st, "u2", 11, t0.Add(time.Minute))
		c := queueAt(t, st, "u3", 12, t0.Add(time.Hour))
		if q := stats(t, st); q.Deliveries.Pending != 3 || q.Deliveries.Running != 0 || !q.Deliveries.OldestPending.Equal(t0) {
			t.Fatalf("3 queued: %+v", q)
		}
		now := t0.Add(2 * time.Hour)
		claimed, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: now, Lease: time.Minute, Limit: 10, Token: "w"})
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim: %d %v", len(claimed), err)
		}
		if q := stats(t, st); q.Deliveries.Pending != 0 || q.Deliveries.Running != 3 || !q.Deliveries.OldestPending.Equal(t0) {
			t.Fatalf("3 sending: %+v", q)
		}
		finish := func(id int64, res pairing.DeliveryResult, at time.Time) {
			t.Helper()
			if ok, err := st.FinishDelivery(ctx, id, "w", res, at); !ok || err != nil {
				t.Fatalf("finish %d: %v %v", id, ok, err)
			}
		}
		finish(a.ID, pairing.DeliveryResult{Status: pairing.DeliveryFailed, LastError: "rejected: chat not found"}, now)
		finish(b.ID, pairing.DeliveryResult{Status: pairing.DeliveryDelivered}, now)
		finish(c.ID, pairing.DeliveryResult{Status: pairing.DeliveryQueued, NextAttemptAt: now.Add(time.Minute), LastError: "unavailable"}, now)
		q := stats(t, st)
		if q.Deliveries.Pending != 1 || q.Deliveries.Running != 0 || q.Deliveries.Failed != 1 || !q.Deliveries.OldestPending.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after the results: %+v", q)
		}

		failed, err := st.FailedDeliveries(ctx, 10)
		if err != nil || len(failed) != 1 {
			t.Fatalf("failed list: %+v %v", failed, err)
		}
		if f := failed[0]; f.ID != a.ID || f.MessageID != a.MessageID || f.UserID != "u1" || f.Channel != "telegram" ||
			f.Attempts != 1 || f.LastError != "rejected: chat not found" || !f.FinishedAt.Equal(now) {
			t.Fatalf("failed delivery %+v", f)
		}

		// Only a failed delivery can be retried.
		var nf *store.NotFailedError
		if _, err := st.RetryFailedDelivery(ctx, b.ID, now); !errors.As(err, &nf) || nf.State != "delivered" {
			t.Fatalf("retry of a delivered one: %v", err)
		}
		if _, err := st.RetryFailedDelivery(ctx, c.ID, now); !errors.As(err, &nf) || nf.State != "queued" {
			t.Fatalf("retry of a queued one: %v", err)
		}
		if _, err := st.RetryFailedDelivery(ctx, 999999, now); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("retry of an unknown one: %v", err)
		}
		later := now.Add(48 * time.Hour)
		// Concurrent retries: one wins, the others see it queued.
		wins := parallel(t, 8, func(int) (bool, error) {
			_, err := st.RetryFailedDelivery(ctx, a.ID, later)
			if errors.As(err, new(*store.NotFailedError)) {
				return false, nil
			}
			return err == nil, err
		})
		if wins != 1 {
			t.Fatalf("%d retries won, want 1", wins)
		}
		m, err := st.MessageByID(ctx, a.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		if d := m.Deliveries[0]; d.Status != pairing.DeliveryQueued || d.Attempts != 0 || !d.NextAttemptAt.Equal(later) ||
			!d.RequeuedAt.Equal(later) || !d.FinishedAt.IsZero() || d.LastError != "rejected: chat not found" {
			t.Fatalf("retried delivery %+v", d)
		}
		if q := stats(t, st); q.Deliveries.Pending != 2 || q.Deliveries.Failed != 0 || !q.Deliveries.OldestPending.Equal(t0) {
			t.Fatalf("after the retry: %+v", q)
		}
		if failed, _ := st.FailedDeliveries(ctx, 10); len(failed) != 0 {
			t.Fatalf("still listed: %+v", failed)
		}
		audit, _ := st.AuditEvents(ctx, 10)
		if len(audit) != 1 || audit[0].Action != "delivery_retry" || audit[0].UserID != "u1" || !audit[0].At.Equal(later) {
			t.Fatalf("audit %+v", audit)
		}
		// The worker gets it with a fresh attempt count and the retry time,
		// from which its max age counts.
		again, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: later, Lease: time.Minute, Limit: 10, Token: "w2"})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(again, func(d pairing.ClaimedDelivery) bool { return d.ID == a.ID })
		if i < 0 || again[i].Attempts != 1 || !again[i].RequeuedAt.Equal(later) || !again[i].MessageCreatedAt.Equal(t0) {
			t.Fatalf("claim after the retry: %+v", again)
		}
	})
}

func TestFailedDeliveriesNewestFirst(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		var ids []int64
		for i := range 3 {
			d := queueAt(t, st, "u", int64(10+i), t0)
			ids = append(ids, d.ID)
		}
		if _, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: t0, Lease: time.Minute, Limit: 10, Token: "w"}); err != nil {
			t.Fatal(err)
		}
		// Failed in the order 2, 0, 1.
		for k, i := range []int{2, 0, 1} {
			if ok, err := st.FinishDelivery(ctx, ids[i], "w", pairing.DeliveryResult{Status: pairing.DeliveryFailed, LastError: "blocked"}, t0.Add(time.Duration(k)*time.Second)); !ok || err != nil {
				t.Fatal(ok, err)
			}
		}
		got, err := st.FailedDeliveries(ctx, 2)
		if err != nil || len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[0] {
			t.Fatalf("newest two: %+v %v", got, err)
		}
	})
}

func TestQueueStatsAndSiteEventRetry(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		addEvent(t, st, "U", t0) // 1
		addEvent(t, st, "U", t0) // 2: waits for 1
		addEvent(t, st, "V", t0) // 3
		if q := stats(t, st); q.SiteEvents.Unfinished() != 3 || q.SiteEvents.Failed != 0 {
			t.Fatalf("3 pending: %+v", q)
		}
		if got := claim(t, st, "a", t0, 10); !slices.Equal(ids(got), []int64{1, 3}) {
			t.Fatalf("claim %v", ids(got))
		}
		if err := st.FailSiteEvent(ctx, 1, "a", t0.Add(time.Second), "HTTP 410: gone"); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkSiteEventDelivered(ctx, 3, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if q := stats(t, st); q.SiteEvents.Unfinished() != 1 || q.SiteEvents.Failed != 1 {
			t.Fatalf("one failed, one pending: %+v", q)
		}
		failed, err := st.FailedSiteEvents(ctx, 10)
		if err != nil || !slices.Equal(ids(failed), []int64{1}) || failed[0].LastError != "HTTP 410: gone" ||
			failed[0].Attempts != 1 || failed[0].UserID != "U" || !failed[0].FailedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("failed events %+v %v", failed, err)
		}

		var nf *store.NotFailedError
		if _, err := st.RetryFailedSiteEvent(ctx, 3, t0); !errors.As(err, &nf) || nf.State != "delivered" {
			t.Fatalf("retry of a delivered event: %v", err)
		}
		if _, err := st.RetryFailedSiteEvent(ctx, 2, t0); !errors.As(err, &nf) || nf.State != "pending" {
			t.Fatalf("retry of a pending event: %v", err)
		}
		if _, err := st.RetryFailedSiteEvent(ctx, 99, t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("retry of an unknown event: %v", err)
		}
		now := t0.Add(time.Hour)
		e, err := st.RetryFailedSiteEvent(ctx, 1, now)
		if err != nil || e.ID != 1 || e.Attempts != 0 || !e.FailedAt.IsZero() || !e.NextAttemptAt.Equal(now) || e.LastError != "HTTP 410: gone" {
			t.Fatalf("retried %+v %v", e, err)
		}
		if q := stats(t, st); q.SiteEvents.Unfinished() != 2 || q.SiteEvents.Failed != 0 {
			t.Fatalf("after the retry: %+v", q)
		}
		if _, err := st.RetryFailedSiteEvent(ctx, 1, now); !errors.As(err, &nf) || nf.State != "pending" {
			t.Fatalf("second retry: %v", err)
		}
		// The site event worker takes it again first; 2 still waits for it (order
		// per user).
		if got := claim(t, st, "b", now, 10); !slices.Equal(ids(got), []int64{1}) || got[0].Attempts != 1 {
			t.Fatalf("claim after the retry: %v", ids(got))
		}
		audit, _ := st.AuditEvents(ctx, 10)
		if len(audit) != 1 || audit[0].Action != "site_event_retry" || audit[0].UserID != "U" {
			t.Fatalf("audit %+v", audit)
		}
	})
}

func TestQueueStatsInbound(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		enqueue(t, st, t0, inEv("tg", "1", "a"), inEv("tg", "2", "b"), inEv("tg", "3", "c"))
		if q := stats(t, st); q.Inbound.Unfinished() != 3 {
			t.Fatalf("3 pending: %+v", q)
		}
		items := claimIn(t, st, "w", t0, 2)
		if len(items) != 2 {
			t.Fatalf("claimed %d", len(items))
		}
		if q := stats(t, st); q.Inbound.Unfinished() != 3 {
			t.Fatalf("claimed ones are still pending: %+v", q)
		}
		if err := st.FinishInbound(ctx, items[0].ID, t0); err != nil {
			t.Fatal(err)
		}
		if err := st.FailInbound(ctx, items[1].ID, "w", t0, "too old"); err != nil {
			t.Fatal(err)
		}
		if q := stats(t, st); q.Inbound.Unfinished() != 1 {
			t.Fatalf("one handled, one given up: %+v", q)
		}
	})
}
