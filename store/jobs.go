package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// jobTable describes a table of jobs that workers claim with a lease
// (pairing's job engine): inbound_events and site_events share the
// columns attempts, next_attempt_at, lease_owner, lease_until, failed_at,
// last_error and created_at, and differ in the rest, named here.
type jobTable struct {
	name string
	// done is the column stamped when the job is handled.
	done string
	// sameGroup matches a row p of row e's ordering group: only the
	// oldest pending row of a group is claimable, so a group's jobs run
	// one at a time, in order.
	sameGroup string
	// ungrouped, when set, is a condition on e under which a row belongs
	// to no group and waits for nothing.
	ungrouped string
	// columns are what a claim returns.
	columns string
}

var (
	inboundJobs = jobTable{name: "inbound_events", done: "done_at",
		sameGroup: "p.source = e.source AND p.grp = e.grp", columns: columnsOf[inboundRow]("")}
	siteEventJobs = jobTable{name: "site_events", done: "delivered_at",
		sameGroup: "p.user_id = e.user_id", ungrouped: "e.user_id = ''", columns: columnsOf[siteEventRow]("")}
)

// pending is the condition of a row neither handled nor given up.
func (t jobTable) pending(alias string) string {
	return alias + t.done + " = 0 AND " + alias + "failed_at = 0"
}

// claimSQL picks the claimable rows in a CTE (MATERIALIZED: PostgreSQL
// could otherwise run a LIMIT subquery more than once and claim more than
// the limit) and, on PostgreSQL, locks them FOR UPDATE SKIP LOCKED (lock),
// so instances claiming at once take disjoint rows; a row another claim
// changed meanwhile is checked again against the CTE's conditions
// (PostgreSQL's recheck of a locked row). On SQLite the single writer
// connection makes the statement atomic. Arguments: now, now, limit,
// owner, lease end.
//
// Its cost is bounded by the rows it walks, not by the backlog, in any
// plan PostgreSQL may pick without statistics or as a generic plan
// (TestJobClaimsDoNotReadTheBacklog):
//   - the walk reads pending rows in id order through the pending index
//     and stops at the limit;
//   - "the oldest pending row of its group" is a scalar subquery, which
//     stays a subplan probing the group index with the row's own group.
//     Written as NOT EXISTS it became an anti join, and without
//     statistics PostgreSQL ran it as a nested loop that read every
//     pending row once per row walked;
//   - the UPDATE finds its rows by primary key only. They are the rows
//     the CTE locked (or, on SQLite, read under the write lock), so they
//     are still pending and due; repeating those conditions let the
//     planner read the rows through the pending index instead, the whole
//     index per claim.
func (t jobTable) claimSQL(lock string) string {
	first := `e.id = (
      SELECT p.id FROM ` + t.name + ` p
      WHERE ` + t.sameGroup + ` AND ` + t.pending("p.") + `
      ORDER BY p.id LIMIT 1)`
	if t.ungrouped != "" {
		first = "(" + t.ungrouped + " OR " + first + ")"
	}
	return `WITH picked AS MATERIALIZED (
  SELECT e.id FROM ` + t.name + ` e
  WHERE ` + t.pending("e.") + ` AND e.next_attempt_at <= ? AND e.lease_until <= ?
    AND ` + first + `
  ORDER BY e.id
  LIMIT ? ` + lock + `)
UPDATE ` + t.name + ` SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM picked)
RETURNING ` + t.columns
}

// leasedRow is a row of a job table.
type leasedRow interface{ rowID() int64 }

func (r inboundRow) rowID() int64   { return r.ID }
func (r siteEventRow) rowID() int64 { return r.ID }

// claimJobs leases to owner, until now+lease, up to limit claimable rows,
// counts one attempt on each, and returns them in id order.
func claimJobs[R leasedRow](ctx context.Context, s *Store, t jobTable, owner string, now time.Time, lease time.Duration, limit int) ([]R, error) {
	lock := ""
	if s.driver == Postgres {
		lock = "FOR UPDATE SKIP LOCKED"
	}
	n := us(now)
	rows, err := listRows[R](ctx, s.repo, s.w, t.claimSQL(lock), n, n, limit, owner, us(now.Add(lease)))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b R) int { return cmp.Compare(a.rowID(), b.rowID()) })
	return rows, nil
}

// finishJob marks a row handled. Whoever holds the lease now, the effect
// happened, so the owner is not checked.
func (s *Store) finishJob(ctx context.Context, t jobTable, id int64, now time.Time) error {
	_, err := s.exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = ?, lease_until = 0, lease_owner = '', last_error = ''
		WHERE id = ? AND %s = 0`, t.name, t.done, t.done), us(now), id)
	return err
}

// releaseJob ends owner's lease on a failed try, keeping its error, and
// sets column to at: next_attempt_at schedules the next try,
// failed_at gives up. It changes nothing when owner no longer holds the
// lease.
func (s *Store) releaseJob(ctx context.Context, t jobTable, column string, id int64, owner string, at time.Time, lastError string) error {
	_, err := s.exec(ctx, `UPDATE `+t.name+` SET `+column+` = ?, lease_until = 0, lease_owner = '', last_error = ?
		WHERE id = ? AND lease_owner = ? AND `+t.pending(""), us(at), truncate(lastError, maxLastError), id, owner)
	return err
}

// maxLastError bounds a stored last error, whatever the caller clipped.
const maxLastError = 500

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n]
}
