package pairingtest

import (
	"bytes"
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Deep-link tokens (pairing.LinkTokenRepo).

func (m *MemStore) CreateLinkToken(ctx context.Context, t pairing.LinkToken) error {
	return m.do(func(r repo) error { return r.CreateLinkToken(ctx, t) })
}
func (r repo) CreateLinkToken(_ context.Context, t pairing.LinkToken) error {
	for _, o := range r.st.linkTokens {
		if bytes.Equal(o.Hash, t.Hash) {
			return pairing.ErrRaced // the unique index on hash
		}
	}
	t.ID = r.id()
	r.st.linkTokens[t.ID] = t
	return nil
}

func (m *MemStore) LinkTokenByHash(ctx context.Context, h []byte) (t pairing.LinkToken, err error) {
	err = m.do(func(r repo) error { t, err = r.LinkTokenByHash(ctx, h); return err })
	return
}
func (r repo) LinkTokenByHash(_ context.Context, h []byte) (pairing.LinkToken, error) {
	for _, t := range r.st.linkTokens {
		if bytes.Equal(t.Hash, h) {
			return t, nil
		}
	}
	return pairing.LinkToken{}, pairing.ErrNotFound
}

func (m *MemStore) SpendLinkToken(ctx context.Context, id, leadID int64, now time.Time) (ok bool, err error) {
	err = m.do(func(r repo) error { ok, err = r.SpendLinkToken(ctx, id, leadID, now); return err })
	return
}
func (r repo) SpendLinkToken(_ context.Context, id, leadID int64, now time.Time) (bool, error) {
	t, ok := r.st.linkTokens[id]
	if !ok || !t.UsedAt.IsZero() || !t.ExpiresAt.After(now) {
		return false, nil
	}
	t.UsedAt, t.LeadID = now, leadID
	r.st.linkTokens[id] = t
	return true, nil
}

// LinkTokens returns the stored deep-link tokens (tests check that only
// hashes are kept).
func (m *MemStore) LinkTokens() []pairing.LinkToken {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]pairing.LinkToken, 0, len(m.st.linkTokens))
	for _, t := range m.st.linkTokens {
		out = append(out, t)
	}
	return out
}
