package api

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// keyCacheTTL is how long an API key the database accepted is accepted
// again without asking it. Every /v1 request carries a key, and a lookup
// per request is a database round trip (on PostgreSQL, a network one) for
// an answer that almost never changes; the price is that a revoked key
// keeps working on each instance for at most this long
// (docs/security.md).
const keyCacheTTL = 5 * time.Second

// keyCacheMax bounds the entries. Only keys the database accepted are
// kept, and those are created by an operator, so the bound is only a
// guard: past it the expired entries go, and if none had expired, all.
const keyCacheMax = 1024

// keyCache remembers accepted API keys for keyCacheTTL, by the SHA-256 of
// the token (the digest the database is searched by; the token itself is
// not kept). A refusal is never cached: a new key works at once, and
// unknown keys stay behind the per-IP limit of 401s.
type keyCache struct {
	now func() time.Time
	ttl time.Duration

	mu   sync.Mutex
	keys map[[sha256.Size]byte]cachedKey
}

type cachedKey struct {
	key   pairing.APIKey
	until time.Time
}

func newKeyCache(now func() time.Time, ttl time.Duration) *keyCache {
	return &keyCache{now: now, ttl: ttl, keys: map[[sha256.Size]byte]cachedKey{}}
}

// authenticate answers from the cache while the entry is fresh, else asks
// lookup and keeps what it accepted.
func (c *keyCache) authenticate(ctx context.Context, token string, lookup func(context.Context, string) (pairing.APIKey, error)) (pairing.APIKey, error) {
	digest := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	e, ok := c.keys[digest]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.key, nil
	}
	k, err := lookup(ctx, token)
	if err != nil {
		if ok {
			c.mu.Lock()
			delete(c.keys, digest)
			c.mu.Unlock()
		}
		return k, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= keyCacheMax {
		for d, e := range c.keys {
			if !now.Before(e.until) {
				delete(c.keys, d)
			}
		}
		if len(c.keys) >= keyCacheMax {
			clear(c.keys)
		}
	}
	c.keys[digest] = cachedKey{key: k, until: now.Add(c.ttl)}
	return k, nil
}
