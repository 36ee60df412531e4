package store

import (
	"context"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// keyUseInterval is how stale an API key's last_used_at may get: a key in
// use is written at most once per interval per instance, so the column
// costs nothing on the request path.
const keyUseInterval = time.Minute

// keyUse keeps api_keys.last_used_at. The time a key was last written is
// held in memory; only when it is older than keyUseInterval does a lookup
// start a write, in the background, so no request waits for it.
type keyUse struct {
	now func() time.Time

	mu      sync.Mutex
	written map[int64]time.Time
	closed  bool
	writing sync.WaitGroup
}

func newKeyUse() *keyUse {
	return &keyUse{now: time.Now, written: map[int64]time.Time{}}
}

// APIKeyByHash finds a key by the digest of its secret. A lookup that finds
// an active key is a use of it (the caller holds the secret), so it is
// recorded here rather than by each caller.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (pairing.APIKey, error) {
	k, err := s.repo.APIKeyByHash(ctx, hash)
	if err == nil && k.RevokedAt.IsZero() {
		s.keyUse.used(s.repo, k.ID)
	}
	return k, err
}

// used starts a write of the key's last use if the last one is older than
// keyUseInterval. A failed write is only missed: the next use after the
// interval tries again.
func (u *keyUse) used(r repo, keyID int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	if u.closed || now.Sub(u.written[keyID]) < keyUseInterval {
		return
	}
	u.written[keyID] = now
	u.writing.Add(1)
	go func() {
		defer u.writing.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = r.exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, us(now), keyID)
	}()
}

// close waits for the writes under way; later uses are not recorded.
func (u *keyUse) close() {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	u.writing.Wait()
}
