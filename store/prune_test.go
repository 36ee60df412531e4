package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func TestPruneSpent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		lead, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "p"}, pairing.Profile{}, t0)
		if err != nil {
			t.Fatal(err)
		}
		w, err := st.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		cut := t0.Add(time.Hour)
		for i, exp := range []time.Time{t0, cut.Add(time.Minute)} {
			if err := st.CreateGrant(ctx, pairing.GrantRecord{Hash: []byte{byte(i)}, Kind: pairing.GrantRegister, WebUserID: w.ID, ExpiresAt: exp, CreatedAt: t0}, pairing.AuditEvent{At: t0, Action: "authorize"}); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateLinkToken(ctx, pairing.LinkToken{Hash: []byte{byte(i)}, Channel: "telegram", UserID: "u", ExpiresAt: exp, CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateLinkNotice(ctx, pairing.LinkNotice{Hash: []byte{byte(i)}, LeadID: lead.ID, UserID: "u", ExpiresAt: exp, CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.UseLoginProof(ctx, []byte{byte(i)}, exp); !ok || err != nil {
				t.Fatalf("proof %d: %v %v", i, ok, err)
			}
		}
		msg := func(created time.Time, status pairing.DeliveryStatus, finished time.Time) int64 {
			m := pairing.Message{UserID: "u", PersonID: lead.PersonID, Text: "hi", CreatedAt: created,
				Deliveries: []pairing.Delivery{{LeadID: lead.ID, Channel: "telegram", ExternalID: "p", Status: status,
					CreatedAt: created, UpdatedAt: created, FinishedAt: finished}}}
			if err := st.CreateMessage(ctx, &m); err != nil {
				t.Fatal(err)
			}
			return m.ID
		}
		oldDone := msg(t0, pairing.DeliveryDelivered, t0)
		oldPending := msg(t0, pairing.DeliveryQueued, time.Time{})
		newDone := msg(cut.Add(time.Minute), pairing.DeliveryDelivered, cut.Add(time.Minute))

		n, err := st.PruneSpent(ctx, cut, cut)
		if err != nil || n != 5 {
			t.Fatalf("pruned %d rows (%v), want 5: one grant, one token, one notice, one proof, one message", n, err)
		}
		if ok, err := st.UseLoginProof(ctx, []byte{1}, cut.Add(time.Hour)); ok || err != nil {
			t.Fatalf("a live proof was pruned or taken twice: %v %v", ok, err)
		}
		if ok, err := st.UseLoginProof(ctx, []byte{0}, cut.Add(time.Hour)); !ok || err != nil {
			t.Fatalf("an expired proof was kept: %v %v", ok, err)
		}
		if _, err := st.LinkNoticeByHash(ctx, []byte{0}); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("expired notice kept: %v", err)
		}
		if _, err := st.LinkNoticeByHash(ctx, []byte{1}); err != nil {
			t.Fatalf("live notice pruned: %v", err)
		}
		if _, err := st.GrantByHash(ctx, []byte{0}); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("expired grant kept: %v", err)
		}
		if _, err := st.GrantByHash(ctx, []byte{1}); err != nil {
			t.Fatalf("live grant pruned: %v", err)
		}
		if _, err := st.LinkTokenByHash(ctx, []byte{0}); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("expired token kept: %v", err)
		}
		if _, err := st.MessageByID(ctx, oldDone); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("finished old message kept: %v", err)
		}
		for _, id := range []int64{oldPending, newDone} {
			if _, err := st.MessageByID(ctx, id); err != nil {
				t.Fatalf("message %d pruned: %v", id, err)
			}
		}
	})
}

// TestLinkNoticeSpentOnce: of two presses, on any engine, one spends the
// token; a spent or expired token is never spent again.
func TestLinkNoticeSpentOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		n := pairing.LinkNotice{Hash: []byte("notice-hash"), LeadID: 7, UserID: "u1", ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
		if err := st.CreateLinkNotice(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateLinkNotice(ctx, n); err == nil {
			t.Fatal("a second notice with the same hash")
		}
		got, err := st.LinkNoticeByHash(ctx, n.Hash)
		if err != nil || got.LeadID != 7 || got.UserID != "u1" || !got.UsedAt.IsZero() || !got.ExpiresAt.Equal(n.ExpiresAt) {
			t.Fatalf("read back %+v %v", got, err)
		}
		if ok, err := st.SpendLinkNotice(ctx, got.ID, t0.Add(2*time.Hour)); ok || err != nil {
			t.Fatalf("spent after expiry: %v %v", ok, err)
		}
		if ok, err := st.SpendLinkNotice(ctx, got.ID, t0); !ok || err != nil {
			t.Fatalf("first spend: %v %v", ok, err)
		}
		if ok, err := st.SpendLinkNotice(ctx, got.ID, t0); ok || err != nil {
			t.Fatalf("second spend: %v %v", ok, err)
		}
		if got, _ := st.LinkNoticeByHash(ctx, n.Hash); !got.UsedAt.Equal(t0) {
			t.Fatalf("used_at %v", got.UsedAt)
		}
	})
}
