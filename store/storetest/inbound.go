package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// FaultyInbound is the real inbound queue with one fault: while
// FailEnqueue holds an error, storing returns it (the database down). It
// remembers the events stored, so a test can read their rows back. The
// adapters' tests put it between their webhooks (or polling) and the
// inbound worker.
type FaultyInbound struct {
	*store.Store
	t    testing.TB
	mu   sync.Mutex
	fail error
	keys []pairing.InboundEvent
}

var _ pairing.InboundQueue = (*FaultyInbound)(nil)

// NewFaultyInbound wraps st's inbound queue.
func NewFaultyInbound(t testing.TB, st *store.Store) *FaultyInbound {
	return &FaultyInbound{Store: st, t: t}
}

// FailEnqueue makes storing fail with err (nil: storing works again).
func (f *FaultyInbound) FailEnqueue(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *FaultyInbound) EnqueueInbound(ctx context.Context, evs []pairing.InboundEvent, now time.Time) (int, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return 0, fail
	}
	n, err := f.Store.EnqueueInbound(ctx, evs, now)
	if err == nil {
		f.mu.Lock()
		for _, ev := range evs {
			if !slices.ContainsFunc(f.keys, func(k pairing.InboundEvent) bool { return k.Source == ev.Source && k.Key == ev.Key }) {
				f.keys = append(f.keys, ev)
			}
		}
		f.mu.Unlock()
	}
	return n, err
}

// Rows reads back every stored row, in the order first stored.
func (f *FaultyInbound) Rows() []pairing.InboundItem {
	f.mu.Lock()
	keys := slices.Clone(f.keys)
	f.mu.Unlock()
	var out []pairing.InboundItem
	for _, k := range keys {
		it, err := f.InboundByKey(context.Background(), k.Source, k.Key)
		if err != nil {
			f.t.Errorf("reading back inbound row %s/%s: %v", k.Source, k.Key, err)
			continue
		}
		out = append(out, it)
	}
	return out
}

// Pending tells whether a stored row is neither handled nor given up.
func (f *FaultyInbound) Pending() bool {
	return slices.ContainsFunc(f.Rows(), func(it pairing.InboundItem) bool { return it.DoneAt.IsZero() && it.FailedAt.IsZero() })
}
