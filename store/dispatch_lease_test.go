package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// slowSite takes every event, slowly (well within any send timeout).
type slowSite struct {
	mu  sync.Mutex
	got map[int64]int
}

func (s *slowSite) SendEvent(ctx context.Context, e pairing.SiteEvent, body []byte) error {
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[e.ID]++
	return nil
}

func (s *slowSite) counts() (events, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.got {
		dups += n - 1
	}
	return len(s.got), dups
}

// Two site event workers (two instances) and a slow but healthy site: no event
// is sent twice. A pass used to claim a whole batch and send it a few at
// a time, so the last events of a batch started after their lease had
// run out and the other instance claimed and sent them too.
func TestSiteEventWorkersOnSlowSiteSendEachEventOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		const n = 16
		for range n {
			addEvent(t, st, "", time.Now())
		}
		site := &slowSite{got: map[int64]int{}}
		cfg := pairing.SiteEventWorkerConfig{Lease: 500 * time.Millisecond, Workers: 1, PollInterval: 20 * time.Millisecond}
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 2 {
			d := pairing.NewSiteEventWorker(st, site, cfg)
			wg.Add(1)
			go func() { defer wg.Done(); _ = d.Run(rctx) }()
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if events, _ := site.counts(); events == n || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // a late duplicate would land now
		cancel()
		wg.Wait()
		events, dups := site.counts()
		if events != n || dups != 0 {
			t.Fatalf("%d of %d events received, %d duplicates", events, n, dups)
		}
	})
}
