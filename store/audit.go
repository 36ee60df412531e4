package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

type auditRow struct {
	ID        int64  `db:"id"`
	At        int64  `db:"at"`
	Action    string `db:"action"`
	Outcome   string `db:"outcome"`
	KeyID     int64  `db:"key_id"`
	WebUserID int64  `db:"web_user_id"`
	PersonID  int64  `db:"person_id"`
	UserID    string `db:"user_id"`
	Detail    string `db:"detail"`
}

func (r repo) AddAudit(ctx context.Context, e pairing.AuditEvent) error {
	return r.execLater(ctx, insertAudit, auditArgs(e)...)
}

const insertAudit = `INSERT INTO audit_events (at, action, outcome, key_id, web_user_id, person_id, user_id, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

func auditArgs(e pairing.AuditEvent) []any {
	return []any{us(e.At), e.Action, e.Outcome, e.KeyID, e.WebUserID, e.PersonID, e.UserID, e.Detail}
}

// AuditEvents lists the newest audit events, newest first.
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]pairing.AuditEvent, error) {
	rows, err := listRows[auditRow](ctx, s.repo, s.r, `SELECT `+columnsOf[auditRow]("")+` FROM audit_events ORDER BY id DESC LIMIT ?`, limit)
	return converted(rows, err, func(r auditRow) pairing.AuditEvent {
		return pairing.AuditEvent{
			At: tm(r.At), Action: r.Action, Outcome: r.Outcome, KeyID: r.KeyID, WebUserID: r.WebUserID,
			PersonID: r.PersonID, UserID: r.UserID, Detail: r.Detail,
		}
	})
}

// AuditPruneBatch is how many audit rows one DELETE of PruneAudit removes
// at most. On SQLite every write waits for the one writer connection, so a
// backlog of millions of rows is deleted in many short statements, with the
// other writers served in between, instead of one that holds the writer for
// seconds.
const AuditPruneBatch = 10_000

// pruneAuditSQL deletes one batch of audit rows older than a time: a
// subquery picks them (DELETE ... LIMIT is not in every SQLite build nor
// in PostgreSQL). The subquery reads them in audit_events_at order, so it
// walks that index from the oldest row and stops at the first row past
// the time. Without the ORDER BY, PostgreSQL planned it as a sequential
// scan wherever it guessed that many rows match (an unanalyzed table, a
// generic plan: a third of the table, by default) and read the whole
// table when none did. On PostgreSQL "id IN (subquery)" may be planned as
// a hash join over the whole table, so the ids are handed over as an
// array, which is looked up through the primary key.
func pruneAuditSQL(driver string) string {
	if driver == Postgres {
		return `DELETE FROM audit_events WHERE id = ANY(ARRAY(SELECT id FROM audit_events WHERE at < ? ORDER BY at LIMIT ?))`
	}
	return `DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? ORDER BY at LIMIT ?)`
}

// PruneAudit deletes the audit events older than before, at most batch
// rows per statement (batch <= 0: AuditPruneBatch), statement after
// statement until one deletes fewer than batch. It returns how many rows
// went. Each statement picks its rows through the audit_events_at index.
// It stops early, with what it deleted so far, when ctx ends.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = AuditPruneBatch
	}
	q := pruneAuditSQL(s.driver)
	var total int64
	for {
		n, err := s.exec(ctx, q, us(before), batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
