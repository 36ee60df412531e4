package store

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestPruneAuditWalksTheIndex: on PostgreSQL the prune's batch is read
// through audit_events_at, never by a sequential scan, also where the
// planner has no statistics (a temporary table is never analyzed) and in
// a generic plan, where it guesses that a third of the rows match. Before
// the subquery was ordered, both plans scanned the whole table, and when
// no row was old enough they read all of it (seen as 240,000 rows read at
// every start of the load test's instances).
func TestPruneAuditWalksTheIndex(t *testing.T) {
	dsn := os.Getenv("PAIRING_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PAIRING_TEST_POSTGRES_DSN not set")
	}
	db, _ := countedPool(t, dsn)
	for _, q := range []string{
		`CREATE TEMPORARY TABLE audit_events (id bigserial PRIMARY KEY, at bigint NOT NULL)`,
		`CREATE INDEX audit_events_at ON audit_events (at)`,
		`INSERT INTO audit_events (at) SELECT 1000000 + g FROM generate_series(1, 50000) g`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// The statement as PruneAudit sends it, with PostgreSQL's parameters.
	q := pruneAuditSQL(Postgres)
	for i := 1; strings.Contains(q, "?"); i++ {
		q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
	}
	if _, err := db.Exec(`PREPARE prune(bigint, bigint) AS ` + q); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := db.Exec(`SET plan_cache_mode = ` + mode); err != nil {
			t.Fatal(err)
		}
		// No row is old enough: the case that read the whole table.
		rows, err := db.Query(`EXPLAIN EXECUTE prune(5, 10000)`)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		_ = rows.Close()
		if p := plan.String(); strings.Contains(p, "Seq Scan") || !strings.Contains(p, "audit_events_at") {
			t.Fatalf("%s: the prune does not walk audit_events_at:\n%s", mode, p)
		}
	}
}
