package store_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func TestLinkTokenStoredAndSpentOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "1")
		tok := pairing.LinkToken{Hash: []byte("link-token-hash"), Channel: "telegram", UserID: "site-7", DisplayName: "Ann «Shop» 👍",
			KeyID: 3, ExpiresAt: t0.Add(15 * time.Minute), CreatedAt: t0}
		if err := st.CreateLinkToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateLinkToken(ctx, tok); !errors.Is(err, pairing.ErrRaced) {
			t.Fatalf("duplicate hash: %v", err)
		}
		got, err := st.LinkTokenByHash(ctx, []byte("link-token-hash"))
		if err != nil || got.ID == 0 || got.Channel != "telegram" || got.UserID != "site-7" || got.DisplayName != tok.DisplayName ||
			got.KeyID != 3 || !got.ExpiresAt.Equal(tok.ExpiresAt) || !got.CreatedAt.Equal(t0) || !got.UsedAt.IsZero() || got.LeadID != 0 {
			t.Fatalf("token %+v %v", got, err)
		}
		if _, err := st.LinkTokenByHash(ctx, []byte("other")); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
		if ok, err := st.SpendLinkToken(ctx, got.ID, l.ID, t0.Add(15*time.Minute)); ok || err != nil {
			t.Fatalf("expired token spent: %v %v", ok, err)
		}
		if ok, err := st.SpendLinkToken(ctx, got.ID+1000, l.ID, t0); ok || err != nil {
			t.Fatalf("missing token spent: %v %v", ok, err)
		}
		at := t0.Add(time.Minute)
		wins := parallel(t, 50, func(int) (bool, error) { return st.SpendLinkToken(ctx, got.ID, l.ID, at) })
		if wins != 1 {
			t.Fatalf("token spent %d times", wins)
		}
		got, err = st.LinkTokenByHash(ctx, []byte("link-token-hash"))
		if err != nil || !got.UsedAt.Equal(at) || got.LeadID != l.ID {
			t.Fatalf("spent token %+v %v", got, err)
		}
	})
}

// The whole deep-link flow on a real database: concurrent confirmations
// of one token from different chats link exactly one of them.
func TestDeepLinkRedeemedOnceOnRealStore(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		clk := pairingtest.NewClock(t0)
		svc, err := pairing.New(st, pairing.Config{Secret: bytes.Repeat([]byte("s"), 32)}, pairing.WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Links: tgLinks{}})
		dl, err := svc.CreateDeepLink(ctx, pairing.DeepLinkRequest{UserID: "site-9", Channel: "telegram", DisplayName: "Ann"})
		if err != nil {
			t.Fatal(err)
		}
		// Only the hash is in the database.
		if _, err := st.LinkTokenByHash(ctx, pairing.HashToken([]byte(dl.Token))); err != nil {
			t.Fatal(err)
		}
		if _, err := st.LinkTokenByHash(ctx, []byte(dl.Token)); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("token stored in clear? %v", err)
		}
		const n = 8
		keys := make([]pairing.LeadKey, n)
		for i := range keys {
			keys[i] = pairing.LeadKey{Channel: "telegram", ExternalID: strconv.Itoa(100 + i)}
			if _, err := svc.TouchLead(ctx, keys[i], pairing.Profile{}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = svc.RedeemDeepLink(ctx, keys[i], dl.Token)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, pairing.ErrTokenUsed):
				t.Fatalf("loser: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d winners", wins)
		}
		link, err := svc.GetLink(ctx, "site-9")
		if err != nil || len(link.Leads) != 1 {
			t.Fatalf("link %+v %v", link, err)
		}
		evs, err := st.SiteEventsAfter(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		created := 0
		for _, ev := range evs {
			if ev.Type == pairing.EventLinkCreated {
				created++
				if !strings.Contains(string(ev.Payload), `"by":"deep_link"`) {
					t.Fatalf("event %s", ev.Payload)
				}
			}
		}
		if created != 1 {
			t.Fatalf("%d link.created events", created)
		}
	})
}

type tgLinks struct{}

func (tgLinks) SendPIN(context.Context, pairing.IssuedPIN) error { return nil }
func (tgLinks) DeepLinkURL(token string) (string, error)         { return "https://t.me/b?start=" + token, nil }
