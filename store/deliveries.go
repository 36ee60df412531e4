package store

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Notification deliveries: workers claim them one per lead and record
// each result under their lease.

// leadFree holds for a delivery d whose lead has no delivery under a
// live lease (the parameter: now). It is a scalar subquery, which
// PostgreSQL keeps as a subplan probing outbox_deliveries_lead with d's
// lead: written as NOT EXISTS it became an anti join, which without
// statistics or in a generic plan could read every pending delivery once
// per candidate.
const leadFree = `COALESCE((SELECT MAX(b.lease_until) FROM outbox_deliveries b
	  WHERE b.lead_id = d.lead_id AND b.status = 'sending'), 0) <= ?`

// Candidates for a claim, in the order they are taken, each walk reading
// outbox_deliveries_due in order and stopping at its limit, so a claim
// costs the same with a backlog of a million as with ten
// (TestJobClaimsDoNotReadTheBacklog): first deliveries whose sender's
// lease ran out (an instance stopped mid-send; they are few), then queued
// deliveries that are due. One walk over both would need an OR, which
// no index reads in order: the claim then sorted every due delivery.
var candidateWalks = [...]string{
	`SELECT id, lead_id FROM outbox_deliveries d
	  WHERE d.status = 'sending' AND d.lease_until <= ? AND ` + leadFree + `
	  ORDER BY d.next_attempt_at, d.id LIMIT ?`,
	`SELECT id, lead_id FROM outbox_deliveries d
	  WHERE d.status = 'queued' AND d.next_attempt_at <= ? AND ` + leadFree + `
	  ORDER BY d.next_attempt_at, d.id LIMIT ?`,
}

// walkInOrder is set for a delivery claim's transaction on PostgreSQL.
// With statistics that know of no backlog (a new table, or statistics
// taken while the queue was empty: an outage builds a backlog up faster
// than autovacuum analyzes the table again), the planner guessed a few
// due rows and chose to read them all and sort them instead of walking
// outbox_deliveries_due: 40,000 pages with 20,000 deliveries waiting. The
// index walk is the only plan that needs no sort, so this leaves it
// alone. It lasts until the transaction ends, and no other statement of
// the claim sorts; a claim inside a caller's transaction (none today)
// goes without it.
const walkInOrder = `SET LOCAL enable_sort = off`

// ClaimDeliveries takes due deliveries, one per lead, skipping leads with
// a delivery under a live lease. On PostgreSQL the candidates are locked
// FOR UPDATE SKIP LOCKED, so concurrent claimers (other instances) pass
// over each other's rows instead of waiting or taking them twice; on
// SQLite the transaction holds the one write lock. A locked candidate
// stays due until this transaction ends, so the UPDATE finds the chosen
// rows by primary key alone (repeating the due conditions let PostgreSQL
// read them through the pending index, all of it).
//
// One chat at a time across instances: row locks alone do not give it on
// PostgreSQL, because two claims running at once lock different rows of
// one lead and neither sees the other's uncommitted claim. So a claimer
// also takes a transaction advisory lock per lead (lockLeads) and skips
// leads another claim holds; and the UPDATE, whose snapshot is taken after
// those locks, repeats "no live lease on this lead", which sees a claim
// that committed while this one was looking.
func (r repo) ClaimDeliveries(ctx context.Context, req pairing.ClaimRequest) ([]pairing.ClaimedDelivery, error) {
	if req.Limit <= 0 {
		return nil, nil
	}
	now := us(req.Now)
	var out []pairing.ClaimedDelivery
	err := r.atomic(ctx, func(tx repo) error {
		lock := ""
		if r.driver == Postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		type candidate struct {
			ID     int64 `db:"id"`
			LeadID int64 `db:"lead_id"`
		}
		if r.driver == Postgres && !r.inTx { // in a caller's transaction it would outlast the claim
			if err := tx.execLater(ctx, walkInOrder); err != nil {
				return err
			}
		}
		want := req.Limit * 4
		var cands []candidate
		for _, walk := range candidateWalks {
			got, err := listRows[candidate](ctx, tx, tx.w, walk+lock, now, now, want-len(cands))
			if err != nil {
				return err
			}
			if cands = append(cands, got...); len(cands) >= want {
				break
			}
		}
		first := map[int64]int64{} // lead -> its first candidate
		var leads []int64
		for _, c := range cands {
			if _, ok := first[c.LeadID]; !ok {
				first[c.LeadID] = c.ID
				leads = append(leads, c.LeadID)
			}
		}
		if r.driver == Postgres && len(leads) > 0 {
			locked, err := lockLeads(ctx, tx, leads, req.Limit)
			if err != nil {
				return err
			}
			leads = slices.DeleteFunc(leads, func(l int64) bool { return !slices.Contains(locked, l) })
		}
		var ids []int64
		for _, l := range leads[:min(len(leads), req.Limit)] {
			ids = append(ids, first[l])
		}
		if len(ids) == 0 {
			return nil
		}
		rows, err := listRows[outboxDeliveryRow](ctx, tx, tx.w, claimDeliveriesSQL(ids),
			us(req.Now.Add(req.Lease)), req.Token, now, now)
		if err != nil || len(rows) == 0 {
			return err
		}
		slices.SortFunc(rows, func(a, b outboxDeliveryRow) int {
			return cmp.Or(cmp.Compare(a.NextAttemptAt, b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
		})
		msgIDs := make([]int64, 0, len(rows))
		for _, row := range rows {
			msgIDs = append(msgIDs, row.MessageID)
		}
		msgs, err := listRows[outboxMessageRow](ctx, tx, tx.w, `SELECT `+columnsOf[outboxMessageRow]("")+` FROM outbox_messages
		  WHERE id IN (`+intList(msgIDs)+`)`)
		if err != nil {
			return err
		}
		byID := make(map[int64]outboxMessageRow, len(msgs))
		for _, m := range msgs {
			byID[m.ID] = m
		}
		for _, row := range rows {
			m := byID[row.MessageID]
			out = append(out, pairing.ClaimedDelivery{
				Delivery: row.delivery(), UserID: m.UserID, Text: m.Text,
				Buttons: decodeButtons(m.Buttons), MessageCreatedAt: tm(m.CreatedAt),
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimDeliveriesSQL leases the deliveries ids, which the claim's
// transaction has locked (PostgreSQL) or read under the write lock
// (SQLite), while their lead has no delivery under a live lease: their
// primary keys are the only way to them. Arguments: lease end, token,
// now, now.
func claimDeliveriesSQL(ids []int64) string {
	return `UPDATE outbox_deliveries SET status = 'sending', lease_until = ?, lease_token = ?,
	  attempts = attempts + 1, updated_at = ? WHERE id IN (` + intList(ids) + `)
	  AND ` + strings.ReplaceAll(leadFree, "d.lead_id", "outbox_deliveries.lead_id") + `
	  RETURNING ` + columnsOf[outboxDeliveryRow]("")
}

// intList writes ids (integers from the database) into a statement as
// "1, 2, 3": a placeholder per id would make a statement text per list
// length, each cached by bind and prepared anew by the driver.
func intList(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// leadLockClass is the first key of the advisory locks claimers take on
// leads (PostgreSQL's two-int key space, apart from migrationLock's).
const leadLockClass = 0x6f757462 // "outb"

// lockLeads takes, without waiting, the claim lock of up to limit of the
// leads, for the rest of the transaction, and returns the leads it got. A
// lead another transaction holds is skipped: that claimer is taking one of
// its deliveries right now. Lead ids fold onto the lock's 32-bit key; two
// leads that share a key only take turns. Advisory locks are per database,
// not per schema, so the first key mixes in the schema's name: two
// deployments in two schemas of one database (or parallel test runs) do
// not hold each other's leads.
func lockLeads(ctx context.Context, tx repo, leads []int64, limit int) ([]int64, error) {
	vals := "(" + strings.ReplaceAll(intList(leads), ", ", "), (") + ")"
	return listScanned(ctx, tx, tx.w, func(l *int64) []any { return []any{l} },
		`SELECT v.lead FROM (VALUES `+vals+`) AS v(lead)
	  WHERE pg_try_advisory_xact_lock(CAST(? AS integer) # hashtext(current_schema()), CAST(v.lead % 2147483648 AS integer))
	  LIMIT ?`, leadLockClass, limit)
}

// FinishDelivery records a result while the delivery is still sending
// under the caller's lease.
func (r repo) FinishDelivery(ctx context.Context, id int64, leaseToken string, res pairing.DeliveryResult, now time.Time) (bool, error) {
	q := `UPDATE outbox_deliveries SET status = ?, lease_until = 0, lease_token = '', updated_at = ?`
	args := []any{string(res.Status), us(now)}
	if !res.Uncount {
		q += `, last_error = ?`
		args = append(args, res.LastError)
	} else {
		q += `, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END`
	}
	if res.Status == pairing.DeliveryQueued {
		q += `, next_attempt_at = ?`
		args = append(args, us(res.NextAttemptAt))
	}
	if res.Status.Final() {
		q += `, finished_at = ?`
		args = append(args, us(now))
	}
	n, err := r.exec(ctx, q+` WHERE id = ? AND lease_token = ? AND status = ?`,
		append(args, id, leaseToken, string(pairing.DeliverySending))...)
	return n == 1, err
}
