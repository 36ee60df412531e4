package pairingtest

import (
	"context"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.InboundQueue = (*MemInbound)(nil)

// MemInbound is an in-memory pairing.InboundQueue with the store's rules:
// (source, key) unique, one pending row of a group claimed at a time, in
// id order.
type MemInbound struct {
	mu   sync.Mutex
	rows []pairing.InboundItem
	// FailWith, when set, is returned by EnqueueInbound (database down).
	FailWith error
}

// NewMemInbound makes an empty queue.
func NewMemInbound() *MemInbound { return &MemInbound{} }

func pending(it *pairing.InboundItem) bool { return it.DoneAt.IsZero() && it.FailedAt.IsZero() }

// EnqueueInbound implements pairing.InboundQueue.
func (m *MemInbound) EnqueueInbound(_ context.Context, evs []pairing.InboundEvent, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailWith != nil {
		return 0, m.FailWith
	}
	n := 0
next:
	for _, ev := range evs {
		for i := range m.rows {
			if m.rows[i].Source == ev.Source && m.rows[i].Key == ev.Key {
				continue next
			}
		}
		ev.Payload = append([]byte(nil), ev.Payload...)
		m.rows = append(m.rows, pairing.InboundItem{InboundEvent: ev, ID: int64(len(m.rows) + 1), CreatedAt: now})
		n++
	}
	return n, nil
}

// ClaimInbound implements pairing.InboundQueue.
func (m *MemInbound) ClaimInbound(_ context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]pairing.InboundItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type group struct{ source, name string }
	blocked := map[group]bool{}
	var out []pairing.InboundItem
	for i := range m.rows {
		it := &m.rows[i]
		if !pending(it) {
			continue
		}
		g := group{it.Source, it.Group}
		if blocked[g] {
			continue
		}
		blocked[g] = true
		if len(out) < limit && !it.NextAttemptAt.After(now) && !it.LeaseUntil.After(now) {
			it.LeaseOwner, it.LeaseUntil = owner, now.Add(lease)
			it.Attempts++
			out = append(out, *it)
		}
	}
	return out, nil
}

func (m *MemInbound) row(id int64) *pairing.InboundItem {
	if id < 1 || int(id) > len(m.rows) {
		return nil
	}
	return &m.rows[id-1]
}

// FinishInbound implements pairing.InboundQueue.
func (m *MemInbound) FinishInbound(_ context.Context, id int64, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it := m.row(id); it != nil && it.DoneAt.IsZero() {
		it.DoneAt, it.LeaseOwner, it.LeaseUntil, it.LastError = now, "", time.Time{}, ""
	}
	return nil
}

// RetryInbound implements pairing.InboundQueue.
func (m *MemInbound) RetryInbound(_ context.Context, id int64, owner string, next time.Time, lastError string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it := m.row(id); it != nil && pending(it) && it.LeaseOwner == owner {
		it.NextAttemptAt, it.LeaseOwner, it.LeaseUntil, it.LastError = next, "", time.Time{}, lastError
	}
	return nil
}

// FailInbound implements pairing.InboundQueue.
func (m *MemInbound) FailInbound(_ context.Context, id int64, owner string, now time.Time, lastError string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it := m.row(id); it != nil && pending(it) && it.LeaseOwner == owner {
		it.FailedAt, it.LeaseOwner, it.LeaseUntil, it.LastError = now, "", time.Time{}, lastError
	}
	return nil
}

// Rows returns a copy of every row, in id order.
func (m *MemInbound) Rows() []pairing.InboundItem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]pairing.InboundItem(nil), m.rows...)
}
