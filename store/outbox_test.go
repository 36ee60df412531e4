package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// queueMessage stores a message with one queued delivery per lead id.
func queueMessage(t testing.TB, st *store.Store, keyID int64, idemKey string, leads ...int64) pairing.Message {
	t.Helper()
	m := pairing.Message{UserID: "u1", PersonID: 1, Text: "Your order shipped", KeyID: keyID, IdempotencyKey: idemKey,
		RequestHash: []byte{1, 2, 3}, CreatedAt: t0, Buttons: []pairing.Button{{Text: "Track", URL: "https://shop.example/t/1"}}}
	for _, l := range leads {
		m.Deliveries = append(m.Deliveries, pairing.Delivery{LeadID: l, Channel: "telegram", ExternalID: fmt.Sprint(l),
			Status: pairing.DeliveryQueued, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0})
	}
	if err := st.Tx(ctx, func(r pairing.Repo) error { return r.CreateMessage(ctx, &m) }); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOutboxMessageRoundTrip(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		m := queueMessage(t, st, 1, "k1", 10, 11)
		if m.ID == 0 || m.Deliveries[0].ID == 0 || m.Deliveries[1].MessageID != m.ID {
			t.Fatalf("ids not set: %+v", m)
		}
		got, err := st.MessageByID(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != m.Text || got.UserID != "u1" || len(got.Buttons) != 1 || got.Buttons[0] != m.Buttons[0] ||
			!got.CreatedAt.Equal(t0) || len(got.Deliveries) != 2 || got.Deliveries[0].Status != pairing.DeliveryQueued ||
			got.IdempotencyKey != "k1" || string(got.RequestHash) != string(m.RequestHash) {
			t.Fatalf("read back %+v", got)
		}
		if _, err := st.MessageByID(ctx, m.ID+100); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
}

func TestOutboxIdempotencyKeyUnique(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		first := queueMessage(t, st, 1, "same", 10)
		dup := pairing.Message{UserID: "u1", Text: "x", KeyID: 1, IdempotencyKey: "same", CreatedAt: t0,
			Deliveries: []pairing.Delivery{{LeadID: 10, Channel: "telegram", ExternalID: "10", Status: pairing.DeliveryQueued, CreatedAt: t0, UpdatedAt: t0}}}
		err := st.Tx(ctx, func(r pairing.Repo) error { return r.CreateMessage(ctx, &dup) })
		if !errors.Is(err, pairing.ErrRaced) {
			t.Fatalf("duplicate key: %v", err)
		}
		// Nothing of the refused message stays.
		if _, err := st.MessageByID(ctx, first.ID+2); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("refused message stored: %v", err)
		}
		// Another API key may use the same key; messages without a key never collide.
		queueMessage(t, st, 2, "same", 10)
		queueMessage(t, st, 1, "", 10)
		queueMessage(t, st, 1, "", 10)
		got, err := st.MessageByIdempotencyKey(ctx, 1, "same")
		if err != nil || got.ID != first.ID || len(got.Deliveries) != 1 {
			t.Fatalf("by key: %+v %v", got, err)
		}
		// A forgotten key (its 24 hours passed) may be used again.
		if err := st.ForgetIdempotencyKey(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.MessageByIdempotencyKey(ctx, 1, "same"); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("forgotten key still found: %v", err)
		}
		queueMessage(t, st, 1, "same", 10)
	})
}

func TestOutboxClaimersNeverShareARow(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		const n = 120
		var leads []int64
		for i := range n {
			leads = append(leads, int64(1000+i))
		}
		queueMessage(t, st, 1, "", leads...)
		var mu sync.Mutex
		claimedBy := map[int64]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 10*n)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := 0; ; round++ {
					token := fmt.Sprintf("w%d-%d", w, round)
					got, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: t0, Lease: time.Minute, Limit: 7, Token: token})
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, d := range got {
						if prev, ok := claimedBy[d.ID]; ok {
							errs <- fmt.Errorf("delivery %d claimed by %s and %s", d.ID, prev, token)
						}
						claimedBy[d.ID] = token
						if d.LeaseToken != token || d.Status != pairing.DeliverySending || d.Attempts != 1 || d.Text == "" {
							errs <- fmt.Errorf("claimed row %+v", d)
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(claimedBy) != n {
			t.Fatalf("claimed %d of %d", len(claimedBy), n)
		}
	})
}

func TestOutboxClaimOnePerLeadAndLeaseExpiry(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		m1 := queueMessage(t, st, 1, "", 10)
		queueMessage(t, st, 1, "", 10) // the same chat again
		claim := func(at time.Time, token string) []pairing.ClaimedDelivery {
			t.Helper()
			got, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: at, Lease: time.Minute, Limit: 10, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		got := claim(t0, "a")
		if len(got) != 1 || got[0].ID != m1.Deliveries[0].ID || got[0].UserID != "u1" || len(got[0].Buttons) != 1 ||
			!got[0].MessageCreatedAt.Equal(t0) || !got[0].LeaseUntil.Equal(t0.Add(time.Minute)) {
			t.Fatalf("first claim: %+v", got)
		}
		// While the lease lives, the chat gets nothing else.
		if got := claim(t0.Add(30*time.Second), "b"); len(got) != 0 {
			t.Fatalf("claimed beside a live lease: %+v", got)
		}
		// The lease passes (the worker died): the delivery is claimed again.
		again := claim(t0.Add(61*time.Second), "c")
		if len(again) != 1 || again[0].ID != got[0].ID || again[0].Attempts != 2 || again[0].LeaseToken != "c" {
			t.Fatalf("re-claim after the lease: %+v", again)
		}
		// The dead worker's token no longer records anything.
		ok, err := st.FinishDelivery(ctx, got[0].ID, "a", pairing.DeliveryResult{Status: pairing.DeliveryDelivered}, t0.Add(62*time.Second))
		if err != nil || ok {
			t.Fatalf("stale token recorded: %v %v", ok, err)
		}
		ok, err = st.FinishDelivery(ctx, got[0].ID, "c", pairing.DeliveryResult{Status: pairing.DeliveryDelivered}, t0.Add(62*time.Second))
		if err != nil || !ok {
			t.Fatalf("finish: %v %v", ok, err)
		}
		m, _ := st.MessageByID(ctx, m1.ID)
		if d := m.Deliveries[0]; d.Status != pairing.DeliveryDelivered || !d.FinishedAt.Equal(t0.Add(62*time.Second)) || d.LeaseToken != "" {
			t.Fatalf("after finish: %+v", d)
		}
		// Now the second message to the chat is claimed; a retry waits for
		// its time, and a release does not count the attempt.
		second := claim(t0.Add(63*time.Second), "d")
		if len(second) != 1 || second[0].MessageID == m1.ID {
			t.Fatalf("second message: %+v", second)
		}
		retryAt := t0.Add(10 * time.Minute)
		if ok, err := st.FinishDelivery(ctx, second[0].ID, "d", pairing.DeliveryResult{Status: pairing.DeliveryQueued, NextAttemptAt: retryAt, LastError: "unavailable: 502"}, t0.Add(64*time.Second)); !ok || err != nil {
			t.Fatalf("retry: %v %v", ok, err)
		}
		if got := claim(retryAt.Add(-time.Second), "e"); len(got) != 0 {
			t.Fatalf("claimed before its retry time: %+v", got)
		}
		third := claim(retryAt, "f")
		if len(third) != 1 || third[0].Attempts != 2 || third[0].LastError != "unavailable: 502" {
			t.Fatalf("retry claim: %+v", third)
		}
		if ok, err := st.FinishDelivery(ctx, third[0].ID, "f", pairing.DeliveryResult{Status: pairing.DeliveryQueued, NextAttemptAt: retryAt, Uncount: true}, retryAt); !ok || err != nil {
			t.Fatalf("release: %v %v", ok, err)
		}
		fourth := claim(retryAt, "g")
		if len(fourth) != 1 || fourth[0].Attempts != 2 || fourth[0].LastError != "unavailable: 502" {
			t.Fatalf("after release: %+v", fourth)
		}
	})
}

// TestOutboxConcurrentClaimsOneChatAtATime runs claimers at the same
// moment, as instances sharing PostgreSQL do, on chats with more queued
// messages than one claim looks at: a chat is never claimed by two of
// them at once (on PostgreSQL, row locks alone let each claimer take a
// different message of the same chat).
func TestOutboxConcurrentClaimsOneChatAtATime(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		for range 30 {
			queueMessage(t, st, 1, "", 10, 11)
		}
		const claimers, rounds = 3, 100
		idle := 0 // rounds in which no claimer took anything
		for round := range rounds {
			got := make([][]pairing.ClaimedDelivery, claimers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range claimers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: t0, Lease: time.Minute, Limit: 2, Token: fmt.Sprintf("r%d-w%d", round, w)})
					if err != nil {
						t.Error(err)
					}
					got[w] = c
				}()
			}
			close(start)
			wg.Wait()
			byLead := map[int64]string{}
			for _, c := range got {
				for _, d := range c {
					if prev, ok := byLead[d.LeadID]; ok {
						t.Fatalf("round %d: chat %d claimed by %s and %s at once", round, d.LeadID, prev, d.LeaseToken)
					}
					byLead[d.LeadID] = d.LeaseToken
				}
			}
			if len(byLead) == 0 {
				// Seen once in CI: other packages' tests held the same
				// lead ids' claim locks from their own schemas (advisory
				// locks are per database; fixed, see
				// TestOutboxClaimLocksAreSchemaLocal). A round lost to
				// another claimer is a later poll's work, not a lost
				// delivery; it must stay rare.
				idle++
				t.Logf("round %d: nothing claimed", round)
			}
			// Hand everything back (uncounted) for the next round.
			for _, c := range got {
				for _, d := range c {
					res := pairing.DeliveryResult{Status: pairing.DeliveryQueued, NextAttemptAt: t0, Uncount: true}
					if ok, err := st.FinishDelivery(ctx, d.ID, d.LeaseToken, res, t0); !ok || err != nil {
						t.Fatalf("release: %v %v", ok, err)
					}
				}
			}
		}
		if idle > rounds/20 {
			t.Fatalf("%d of %d rounds claimed nothing although every delivery was due", idle, rounds)
		}
	})
}

// Advisory locks are per database: the claim locks of one schema's leads
// must not hold back a deployment in another schema whose leads have the
// same ids (it made a concurrent-claims test flaky when other packages'
// tests ran beside it on one database), while within a schema they do.
func TestOutboxClaimLocksAreSchemaLocal(t *testing.T) {
	a, b := storetest.Postgres(t), storetest.Postgres(t)
	queueMessage(t, a, 1, "", 10, 11)
	queueMessage(t, a, 1, "", 10, 11)
	release, err := store.HoldLeadLocks(b, []int64{10, 11})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: t0, Lease: time.Minute, Limit: 2, Token: "a1"})
	release()
	if err != nil || len(got) != 2 {
		t.Fatalf("claims in schema a while schema b holds leads 10 and 11: %d, %v", len(got), err)
	}
	for _, d := range got {
		res := pairing.DeliveryResult{Status: pairing.DeliveryQueued, NextAttemptAt: t0, Uncount: true}
		if ok, err := a.FinishDelivery(ctx, d.ID, d.LeaseToken, res, t0); !ok || err != nil {
			t.Fatalf("release: %v %v", ok, err)
		}
	}
	release, err = store.HoldLeadLocks(a, []int64{10, 11})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got, err := a.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: t0, Lease: time.Minute, Limit: 2, Token: "a2"}); err != nil || len(got) != 0 {
		t.Fatalf("claims in schema a while another claimer of a holds its leads: %d, %v", len(got), err)
	}
}
