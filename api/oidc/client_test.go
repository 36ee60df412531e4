package oidc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// clientStore counts the client reads; only OIDCClient is implemented.
type clientStore struct {
	Store
	clients map[string]store.OIDCClient
	reads   int
}

func (s *clientStore) OIDCClient(_ context.Context, id string) (store.OIDCClient, error) {
	s.reads++
	c, ok := s.clients[id]
	if !ok {
		return store.OIDCClient{}, pairing.ErrNotFound
	}
	return c, nil
}

// A client is read once per clientTTL; its revocation shows after at
// most clientTTL; unknown ids are read every time and never kept.
func TestClientCache(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	st := &clientStore{clients: map[string]store.OIDCClient{"shop": {ID: "shop", Name: "Shop"}}}
	cc := &clientCache{st: st, now: func() time.Time { return now }}
	for range 3 {
		if c, err := cc.get(ctx, "shop"); err != nil || c.Name != "Shop" {
			t.Fatalf("get: %+v, %v", c, err)
		}
	}
	if st.reads != 1 {
		t.Fatalf("%d reads within the TTL, want 1", st.reads)
	}
	st.clients["shop"] = store.OIDCClient{ID: "shop", Name: "Shop", RevokedAt: now}
	now = now.Add(clientTTL - time.Millisecond)
	if c, _ := cc.get(ctx, "shop"); !c.RevokedAt.IsZero() {
		t.Fatal("re-read before the TTL ran out")
	}
	now = now.Add(time.Millisecond)
	if c, _ := cc.get(ctx, "shop"); c.RevokedAt.IsZero() {
		t.Fatal("revocation not seen after the TTL")
	}
	for range 2 {
		if _, err := cc.get(ctx, "guess"); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("unknown client: %v", err)
		}
	}
	if st.reads != 4 || len(cc.m) != 1 {
		t.Fatalf("reads %d, cached %d; unknown ids must not be kept", st.reads, len(cc.m))
	}
	// A clock that went back does not serve a stale entry.
	now = now.Add(-time.Hour)
	cc.get(ctx, "shop")
	if st.reads != 5 {
		t.Fatalf("reads %d after the clock went back", st.reads)
	}
}
