package store_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// claimBacklog is the backlog each queue holds in
// TestJobClaimsDoNotReadTheBacklog: with it, a claim that reads the
// pending rows reads thousands of pages, one that walks to its limit a
// few hundred at most.
const claimBacklog = 20000

// maxClaimPages bounds the pages (shared buffers hit or read) one claim
// statement may touch with claimBacklog rows waiting. The plans that read
// the backlog touched 40,000 to 100,000.
const maxClaimPages = 2000

// TestJobClaimsDoNotReadTheBacklog: on PostgreSQL each statement of a job
// claim (inbound events, site events, notification deliveries) touches a
// bounded number of pages however many jobs wait, in every plan the
// planner may pick: with no statistics (a new table), with statistics
// taken while the queues were empty (a backlog built up since, the state
// after an outage), and with statistics of the backlog; each as a custom
// and as a generic plan. Before, the group checks were NOT EXISTS anti
// joins, the UPDATEs repeated the pending conditions and the delivery walk
// sorted every due delivery, and without statistics a claim of 10 inbound
// events read every pending row once per row it walked: 58 ms with 10,000
// waiting, 165 ms with 40,000.
func TestJobClaimsDoNotReadTheBacklog(t *testing.T) {
	if os.Getenv("PAIRING_TEST_POSTGRES_DSN") == "" {
		t.Skip("PAIRING_TEST_POSTGRES_DSN not set")
	}
	queues := []string{"inbound_events", "site_events", "outbox_deliveries", "outbox_messages"}
	for _, stats := range []string{"none", "taken empty", "taken with the backlog"} {
		t.Run("statistics "+stats, func(t *testing.T) {
			st := storetest.Postgres(t)
			db := store.RawDB(st)
			for _, q := range queues {
				if _, err := db.Exec(`ALTER TABLE ` + q + ` SET (autovacuum_enabled = false)`); err != nil {
					t.Fatal(err)
				}
			}
			analyze := func() {
				for _, q := range queues {
					if _, err := db.Exec(`ANALYZE ` + q); err != nil {
						t.Fatal(err)
					}
				}
			}
			if stats == "taken empty" {
				analyze()
			}
			ids := fillQueues(t, st, claimBacklog)
			if stats == "taken with the backlog" {
				analyze()
			}
			now := t0.Add(time.Hour)
			for name, s := range store.ClaimStatements(now.UnixMicro(), now.Add(time.Minute).UnixMicro(), ids[:10]) {
				for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
					pages, plan := claimPages(t, st, mode, s.Setup, s.SQL, s.Args)
					t.Logf("%s, %s: %d pages", name, mode, pages)
					if pages > maxClaimPages {
						t.Errorf("%s, %s: %d pages with %d waiting, want at most %d:\n%s", name, mode, pages, claimBacklog, maxClaimPages, plan)
					}
				}
			}
		})
	}
}

// fillQueues writes n pending inbound events (in groups of four, like a
// chat's messages), n pending site events (four per user, and every
// tenth for no user) and n queued deliveries (four per lead), and
// returns the deliveries' ids.
func fillQueues(t testing.TB, st *store.Store, n int) []int64 {
	t.Helper()
	groups := n / 4
	var evs []pairing.InboundEvent
	for i := range n {
		evs = append(evs, inEv("telegram:t", fmt.Sprint("k", i), fmt.Sprint("g", i%groups)))
		if len(evs) == 1000 || i == n-1 {
			enqueue(t, st, t0, evs...)
			evs = nil
		}
	}
	err := st.Tx(ctx, func(r pairing.Repo) error {
		for i := range n {
			user := fmt.Sprint("u", i%groups)
			if i%10 == 0 {
				user = ""
			}
			if err := r.AddSiteEvent(ctx, pairing.SiteEvent{Type: "link.created", UserID: user, CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	var leads []int64
	for i := range n {
		leads = append(leads, int64(1+i%groups))
		if len(leads) == 1000 || i == n-1 {
			// A message to many chats: its deliveries share one
			// next_attempt_at.
			m := queueMessage(t, st, 1, "", leads...)
			for _, d := range m.Deliveries {
				ids = append(ids, d.ID)
			}
			leads = nil
		}
	}
	return ids
}

// claimPages runs query with args under EXPLAIN (ANALYZE, BUFFERS) in a
// transaction it rolls back, with plan_cache_mode mode and after the
// statement setup (if any) as the claim runs it, and returns the
// pages the statement touched and its plan.
func claimPages(t *testing.T, st *store.Store, mode, setup, query string, args []any) (int, string) {
	t.Helper()
	c, err := store.RawDB(st).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = tx.Rollback()
		_, _ = c.ExecContext(ctx, `DEALLOCATE claim`)
	}()
	if _, err := tx.Exec(`SET LOCAL plan_cache_mode = ` + mode); err != nil {
		t.Fatal(err)
	}
	if setup != "" {
		if _, err := tx.Exec(setup); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(`PREPARE claim AS ` + query); err != nil {
		t.Fatal(err)
	}
	lits := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			lits[i] = "'" + v + "'"
		default:
			lits[i] = fmt.Sprint(v)
		}
	}
	var out string
	if err := tx.QueryRow(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE claim(` + strings.Join(lits, ", ") + `)`).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var plans []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("plan %q: %v", out, err)
	}
	hit, _ := plans[0].Plan["Shared Hit Blocks"].(float64)
	read, _ := plans[0].Plan["Shared Read Blocks"].(float64)
	return int(hit + read), out
}

// BenchmarkJobClaimWithBacklog: a claim of 10 jobs, per queue and engine,
// with 1,000 and 20,000 jobs waiting in each queue (docs/performance.md).
// The jobs are handed back after each claim, off the clock, so the
// backlog stays the same.
//
//	PAIRING_TEST_POSTGRES_DSN=... go test ./store/ -run '^$' -bench JobClaimWithBacklog
func BenchmarkJobClaimWithBacklog(b *testing.B) {
	engines := map[string]func(testing.TB) *store.Store{"sqlite": storetest.SQLite}
	if os.Getenv("PAIRING_TEST_POSTGRES_DSN") != "" {
		engines["postgres"] = storetest.Postgres
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		open, ok := engines[engine]
		if !ok {
			continue
		}
		for _, backlog := range []int{1000, claimBacklog} {
			b.Run(fmt.Sprintf("%s/waiting=%d", engine, backlog), func(b *testing.B) {
				st := open(b)
				fillQueues(b, st, backlog)
				// Each claim returns the number it took and a function
				// that hands them back.
				claims := []struct {
					name  string
					claim func(i int) (int, func() error, error)
				}{
					{"inbound", func(int) (int, func() error, error) {
						items, err := st.ClaimInbound(ctx, "bench", t0, time.Minute, 10)
						return len(items), func() error {
							for _, it := range items {
								if err := st.RetryInbound(ctx, it.ID, "bench", t0, "again"); err != nil {
									return err
								}
							}
							return nil
						}, err
					}},
					{"site events", func(int) (int, func() error, error) {
						evs, err := st.ClaimSiteEvents(ctx, "bench", t0, time.Minute, 10)
						return len(evs), func() error {
							for _, e := range evs {
								if err := st.RetrySiteEvent(ctx, e.ID, "bench", t0, "again"); err != nil {
									return err
								}
							}
							return nil
						}, err
					}},
					{"deliveries", func(i int) (int, func() error, error) {
						ds, err := st.ClaimDeliveries(ctx, pairing.ClaimRequest{Now: t0, Lease: time.Minute, Limit: 10, Token: fmt.Sprint("bench-", i)})
						return len(ds), func() error {
							for _, d := range ds {
								if _, err := st.FinishDelivery(ctx, d.ID, d.LeaseToken,
									pairing.DeliveryResult{Status: pairing.DeliveryQueued, NextAttemptAt: t0, LastError: "again"}, t0); err != nil {
									return err
								}
							}
							return nil
						}, err
					}},
				}
				for _, c := range claims {
					b.Run(c.name, func(b *testing.B) {
						for i := 0; b.Loop(); i++ {
							n, handBack, err := c.claim(i)
							if err != nil || n != 10 {
								b.Fatalf("claimed %d: %v", n, err)
							}
							b.StopTimer()
							if err := handBack(); err != nil {
								b.Fatal(err)
							}
							b.StartTimer()
						}
					})
				}
			})
		}
	}
}
