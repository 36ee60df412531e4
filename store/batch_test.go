package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// Transactions that run together on SQLite (group commit) keep the
// semantics of separate ones: each failure leaves no trace, a unique
// violation fails only its own transaction, a panic reaches only its own
// caller, and every success is committed.
func TestGroupCommitKeepsEachTransactionApart(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		const n = 300
		boom := errors.New("boom")
		dup := pairing.APIKey{Name: "dup", Prefix: "pk_dup", Hash: []byte("dup-hash"), CreatedAt: t0}
		if _, err := st.CreateAPIKey(ctx, dup); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		panics := make([]any, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { panics[i] = recover() }()
				<-start
				errs[i] = st.Tx(ctx, func(r pairing.Repo) error {
					k := pairing.APIKey{Name: fmt.Sprintf("k%d", i), Prefix: "pk_x", Hash: fmt.Appendf(nil, "hash-%d", i), CreatedAt: t0}
					if _, err := r.CreateAPIKey(ctx, k); err != nil {
						return err
					}
					switch i % 5 {
					case 1:
						return boom // written, then rolled back
					case 2:
						_, err := r.CreateAPIKey(ctx, dup) // unique violation
						return err
					case 3:
						if i%10 == 3 {
							panic(fmt.Sprintf("panic %d", i))
						}
					}
					return nil
				})
			}()
		}
		close(start)
		wg.Wait()

		keys, err := st.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, k := range keys {
			have[k.Name] = true
		}
		for i := range n {
			name := fmt.Sprintf("k%d", i)
			switch {
			case i%5 == 1:
				if !errors.Is(errs[i], boom) || have[name] {
					t.Fatalf("tx %d: err %v, kept %v", i, errs[i], have[name])
				}
			case i%5 == 2:
				if !errors.Is(errs[i], pairing.ErrRaced) || have[name] {
					t.Fatalf("tx %d: err %v, kept %v", i, errs[i], have[name])
				}
			case i%10 == 3:
				if panics[i] != fmt.Sprintf("panic %d", i) || have[name] {
					t.Fatalf("tx %d: panic %v, kept %v", i, panics[i], have[name])
				}
			default:
				if errs[i] != nil || panics[i] != nil || !have[name] {
					t.Fatalf("tx %d: err %v, panic %v, kept %v", i, errs[i], panics[i], have[name])
				}
			}
		}
		if want := n - n/5*2 - n/10 + 1; len(keys) != want {
			t.Fatalf("%d keys, want %d", len(keys), want)
		}
		if st.Driver() == store.SQLite {
			ran, commits := store.BatchStats(st)
			t.Logf("SQLite: %d transactions, %d commits", ran, commits)
			if commits >= ran {
				t.Fatalf("no group commit: %d transactions, %d commits", ran, commits)
			}
		}
	})
}

// A caller whose context ends before the writer takes its transaction
// gets the context's error and nothing is written.
func TestGroupCommitSkipsCancelledCallers(t *testing.T) {
	st := storetest.SQLite(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := st.Tx(cctx, func(r pairing.Repo) error {
		_, err := r.CreateAPIKey(ctx, pairing.APIKey{Name: "late", Prefix: "pk_l", Hash: []byte("late"), CreatedAt: t0})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if keys, _ := st.ListAPIKeys(ctx); len(keys) != 0 {
		t.Fatalf("written: %v", keys)
	}
}

// BenchmarkTxParallel: short write transactions from many goroutines on
// SQLite (group commit) and PostgreSQL; reports commits per transaction.
func BenchmarkTxParallel(b *testing.B) {
	for _, eng := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(eng.name, func(b *testing.B) {
			st := eng.open(b)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := st.Tx(ctx, func(r pairing.Repo) error {
						return r.AddAudit(ctx, pairing.AuditEvent{At: t0, Action: "bench", Outcome: "ok"})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			if ran, commits := store.BatchStats(st); ran > 0 {
				b.ReportMetric(float64(commits)/float64(ran), "commits/tx")
			}
		})
	}
}
