package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

func TestKeyLastUsedWrittenAtMostOncePerMinute(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		var mu sync.Mutex
		now := t0
		store.SetKeyUseClock(st, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		k, err := st.CreateAPIKey(ctx, pairing.APIKey{Name: "site", Prefix: "pdk_abcdef", Hash: []byte("key-hash"), CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		lastUsed := func() time.Time {
			t.Helper()
			store.WaitKeyUse(st)
			keys, err := st.ListAPIKeys(ctx)
			if err != nil || len(keys) != 1 {
				t.Fatalf("keys %v, %v", keys, err)
			}
			return keys[0].LastUsedAt
		}
		if got := lastUsed(); !got.IsZero() {
			t.Fatalf("last used before any use: %v", got)
		}
		lookup := func() {
			t.Helper()
			if _, err := st.APIKeyByHash(ctx, []byte("key-hash")); err != nil {
				t.Fatal(err)
			}
		}

		lookup()
		if got := lastUsed(); !got.Equal(t0) {
			t.Fatalf("last used after the first use: %v, want %v", got, t0)
		}
		// Uses within the minute write nothing: the column keeps the first.
		for range 50 {
			advance(time.Second)
			lookup()
		}
		if got := lastUsed(); !got.Equal(t0) {
			t.Fatalf("last used after 50 uses within a minute: %v, want %v", got, t0)
		}
		advance(10 * time.Second) // t0 + 60s
		lookup()
		if got, want := lastUsed(), t0.Add(time.Minute); !got.Equal(want) {
			t.Fatalf("last used a minute later: %v, want %v", got, want)
		}

		// A revoked key's lookup is no use of it.
		if err := st.RevokeAPIKey(ctx, "site", t0); err != nil {
			t.Fatal(err)
		}
		advance(time.Hour)
		lookup()
		if got, want := lastUsed(), t0.Add(time.Minute); !got.Equal(want) {
			t.Fatalf("last used after a revoked key's lookup: %v, want %v (id %d)", got, want, k.ID)
		}
	})
}
