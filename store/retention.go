package store

import (
	"context"
	"time"
)

// AuditPruneBatch is how many audit rows one DELETE of PruneAudit removes
// at most. On SQLite every write waits for the one writer connection, so a
// backlog of millions of rows is deleted in many short statements, with the
// other writers served in between, instead of one that holds the writer for
// seconds.
const AuditPruneBatch = 10_000

// PruneAudit deletes the audit events older than before, at most batch
// rows per statement (batch <= 0: AuditPruneBatch), statement after
// statement until one deletes fewer than batch. It returns how many rows
// went. Each statement picks its rows through the audit_events_at index.
// It stops early, with what it deleted so far, when ctx ends.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = AuditPruneBatch
	}
	// DELETE ... LIMIT is not in every SQLite build nor in PostgreSQL; a
	// subquery with LIMIT is. On PostgreSQL "id IN (subquery)" may be
	// planned as a hash join over the whole table, so the ids are handed
	// over as an array, which is looked up through the primary key.
	q := `DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? LIMIT ?)`
	if s.driver == Postgres {
		q = `DELETE FROM audit_events WHERE id = ANY(ARRAY(SELECT id FROM audit_events WHERE at < ? LIMIT ?))`
	}
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
