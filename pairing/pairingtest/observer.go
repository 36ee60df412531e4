package pairingtest

import (
	"maps"
	"sync"

	"github.com/pairingd/pairingd/pairing"
)

// Observer records what a pairing.Observer is told, for tests that check
// what was counted.
type Observer struct {
	mu    sync.Mutex
	sends map[string]int
	jobs  map[string]int
}

var _ pairing.Observer = (*Observer)(nil)

// PlatformSend implements pairing.Observer.
func (o *Observer) PlatformSend(channel, kind, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sends == nil {
		o.sends = map[string]int{}
	}
	o.sends[channel+" "+kind+" "+result]++
}

// JobFinished implements pairing.Observer.
func (o *Observer) JobFinished(queue, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.jobs == nil {
		o.jobs = map[string]int{}
	}
	o.jobs[queue+" "+result]++
}

// Sends are the platform sends so far, counted by "channel kind result".
func (o *Observer) Sends() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.sends)
}
