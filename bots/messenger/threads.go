package messenger

import (
	"context"
	"sync"

	"github.com/pairingd/pairingd/pairing"
)

// MemThreadState is a ThreadState kept in memory, for tests and for
// embedding the Hub without a database: enough for one process; after a
// restart owners are unknown until the next handover event. pairingd
// itself keeps owners in its database (store.Store), shared by every
// instance.
type MemThreadState struct {
	mu     sync.Mutex
	owners map[pairing.LeadKey]string
	roles  map[string]string
}

var _ ThreadState = (*MemThreadState)(nil)

// NewMemThreadState returns an empty ThreadState.
func NewMemThreadState() *MemThreadState {
	return &MemThreadState{owners: map[pairing.LeadKey]string{}, roles: map[string]string{}}
}

// SetThreadOwner records the app that owns the thread; "" forgets it.
func (m *MemThreadState) SetThreadOwner(_ context.Context, key pairing.LeadKey, appID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if appID == "" {
		delete(m.owners, key)
		return nil
	}
	m.owners[key] = appID
	return nil
}

// ThreadOwner returns the recorded owner, "" when unknown.
func (m *MemThreadState) ThreadOwner(_ context.Context, key pairing.LeadKey) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owners[key], nil
}

// SetPageRole records a Page's role from an app_roles event.
func (m *MemThreadState) SetPageRole(_ context.Context, channel, role string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roles[channel] = role
	return nil
}

// PageRole returns the recorded role, "" when none.
func (m *MemThreadState) PageRole(_ context.Context, channel string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.roles[channel], nil
}
