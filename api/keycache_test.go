package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// countingAuth counts the key lookups that reach the service.
type countingAuth struct {
	*pairing.Service
	lookups atomic.Int64
}

func (c *countingAuth) Authenticate(ctx context.Context, token string) (pairing.APIKey, error) {
	c.lookups.Add(1)
	return c.Service.Authenticate(ctx, token)
}

func TestKeyCacheLooksUpOncePerTTLAndRevocationTakesEffect(t *testing.T) {
	t.Parallel()
	var auth *countingAuth
	e := newEnv(t, withService(func(s *pairing.Service) Service {
		auth = &countingAuth{Service: s}
		return auth
	}))
	get := func(key string) resp {
		return e.do(http.MethodGet, "/v1/links/nobody", "", header{"Authorization", "Bearer " + key})
	}
	for range 10 {
		expect(t, get(e.key), http.StatusNotFound, "not_linked")
	}
	if n := auth.lookups.Load(); n != 1 {
		t.Fatalf("%d key lookups for 10 requests within the TTL, want 1", n)
	}
	// A fresh entry after the TTL: one more lookup.
	e.clock.Advance(keyCacheTTL)
	expect(t, get(e.key), http.StatusNotFound, "not_linked")
	if n := auth.lookups.Load(); n != 2 {
		t.Fatalf("%d key lookups after the TTL, want 2", n)
	}

	// Revoked: still accepted for what is left of the TTL, refused after.
	if err := e.svc.RevokeAPIKey(e.ctx, "site"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(keyCacheTTL - time.Millisecond)
	expect(t, get(e.key), http.StatusNotFound, "not_linked")
	e.clock.Advance(time.Millisecond)
	expect(t, get(e.key), http.StatusUnauthorized, "unauthorized")
	expect(t, get(e.key), http.StatusUnauthorized, "unauthorized")
	if n := auth.lookups.Load(); n != 4 {
		t.Fatalf("%d key lookups, want 4 (a refusal is not cached)", n)
	}

	// A refusal is not cached: a key created after one works at once.
	_, fresh, err := e.svc.CreateAPIKey(e.ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, get(fresh), http.StatusNotFound, "not_linked")
}

func TestKeyCacheStaysBounded(t *testing.T) {
	t.Parallel()
	now := t0
	c := newKeyCache(func() time.Time { return now }, time.Second)
	accept := func(_ context.Context, token string) (pairing.APIKey, error) {
		return pairing.APIKey{Name: token}, nil
	}
	fill := func(n int, tag rune) {
		for i := range n {
			if _, err := c.authenticate(context.Background(), string([]rune{tag, rune(i + 0x100)}), accept); err != nil {
				t.Fatal(err)
			}
			if len(c.keys) > keyCacheMax {
				t.Fatalf("%d entries, bound %d", len(c.keys), keyCacheMax)
			}
		}
	}
	fill(keyCacheMax, 'a')
	// Expired entries go first when the bound is reached.
	now = now.Add(2 * time.Second)
	fill(1, 'b')
	if len(c.keys) != 1 {
		t.Fatalf("%d entries after the expired ones went, want 1", len(c.keys))
	}
	// None expired: all go.
	fill(keyCacheMax, 'c')
	if len(c.keys) != 1 {
		t.Fatalf("%d entries after a full cache was cleared, want 1", len(c.keys))
	}
}
