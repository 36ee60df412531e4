// Package pairingtest has test doubles for code that uses the pairing
// service: a clock that only moves when a test steps it, and a Channel put
// together from the parts a test needs. Storage in tests is the real store
// (store/storetest), so the storage rules exist once, in SQL.
package pairingtest

import (
	"sync"
	"time"
)

// Clock is a fake clock that only moves when a test advances it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a fake clock at t (UTC).
func NewClock(t time.Time) *Clock { return &Clock{now: t.UTC()} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
