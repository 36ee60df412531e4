package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.InboundQueue = (*Store)(nil)

// inboundRow is a row of inbound_events (migration 0005).
type inboundRow struct {
	ID            int64  `gorm:"column:id"`
	Source        string `gorm:"column:source"`
	EventKey      string `gorm:"column:event_key"`
	Grp           string `gorm:"column:grp"`
	Payload       []byte `gorm:"column:payload"`
	Attempts      int    `gorm:"column:attempts"`
	NextAttemptAt int64  `gorm:"column:next_attempt_at"`
	LeaseOwner    string `gorm:"column:lease_owner"`
	LeaseUntil    int64  `gorm:"column:lease_until"`
	DoneAt        int64  `gorm:"column:done_at"`
	FailedAt      int64  `gorm:"column:failed_at"`
	LastError     string `gorm:"column:last_error"`
	CreatedAt     int64  `gorm:"column:created_at"`
}

const inboundColumns = `id, source, event_key, grp, payload, attempts, next_attempt_at, lease_owner, lease_until, done_at, failed_at, last_error, created_at`

func (r inboundRow) item() pairing.InboundItem {
	return pairing.InboundItem{
		InboundEvent: pairing.InboundEvent{Source: r.Source, Key: r.EventKey, Group: r.Grp, Payload: r.Payload},
		ID:           r.ID, Attempts: r.Attempts, NextAttemptAt: tm(r.NextAttemptAt), LeaseOwner: r.LeaseOwner,
		LeaseUntil: tm(r.LeaseUntil), DoneAt: tm(r.DoneAt), FailedAt: tm(r.FailedAt), LastError: r.LastError,
		CreatedAt: tm(r.CreatedAt),
	}
}

// inboundChunk bounds the rows of one INSERT (bind parameter limits).
const inboundChunk = 200

// EnqueueInbound stores evs in one transaction; a (source, key) stored
// already is skipped (ON CONFLICT DO NOTHING). It returns how many rows
// are new.
func (s *Store) EnqueueInbound(ctx context.Context, evs []pairing.InboundEvent, now time.Time) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	insert := func(db *gorm.DB, part []pairing.InboundEvent) (int64, error) {
		var q strings.Builder
		q.WriteString(`INSERT INTO inbound_events (source, event_key, grp, payload, created_at) VALUES `)
		args := make([]any, 0, 5*len(part))
		for i, ev := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?)")
			payload := ev.Payload
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, ev.Source, ev.Key, ev.Group, payload, us(now))
		}
		q.WriteString(` ON CONFLICT (source, event_key) DO NOTHING`)
		res := db.WithContext(ctx).Exec(q.String(), args...)
		return res.RowsAffected, translate(res.Error)
	}
	if len(evs) <= inboundChunk {
		n, err := insert(s.writer, evs)
		return int(n), err
	}
	total := 0
	err := s.writer.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i := 0; i < len(evs); i += inboundChunk {
			n, err := insert(tx, evs[i:min(i+inboundChunk, len(evs))])
			if err != nil {
				return err
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, translate(err)
	}
	return total, nil
}

// claimInboundSQL has the shape of claimSQL (site events): the CTE picks
// the rows once (MATERIALIZED) and on PostgreSQL locks them FOR UPDATE
// SKIP LOCKED, so instances claiming at once take disjoint rows; the
// UPDATE repeats the conditions, which PostgreSQL re-checks on a row
// another claim changed meanwhile. Only the oldest pending row of a
// (source, grp) is claimable, so one person's events are handled one at a
// time, in order.
const claimInboundSQL = `WITH picked AS MATERIALIZED (
  SELECT e.id FROM inbound_events e
  WHERE e.done_at = 0 AND e.failed_at = 0 AND e.next_attempt_at <= ? AND e.lease_until <= ?
    AND NOT EXISTS (
      SELECT 1 FROM inbound_events p
      WHERE p.source = e.source AND p.grp = e.grp AND p.id < e.id AND p.done_at = 0 AND p.failed_at = 0)
  ORDER BY e.id
  LIMIT ? %s)
UPDATE inbound_events SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM picked) AND done_at = 0 AND failed_at = 0 AND lease_until <= ?
RETURNING ` + inboundColumns

// ClaimInbound leases up to limit claimable rows to owner.
func (s *Store) ClaimInbound(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]pairing.InboundItem, error) {
	rows, err := claim[inboundRow](ctx, s, claimInboundSQL, owner, now, lease, limit)
	if err != nil {
		return nil, err
	}
	out := make([]pairing.InboundItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out, nil
}

// FinishInbound marks a row handled, whoever holds the lease.
func (s *Store) FinishInbound(ctx context.Context, id int64, now time.Time) error {
	_, err := s.exec(ctx, `UPDATE inbound_events SET done_at = ?, lease_until = 0, lease_owner = '', last_error = ''
		WHERE id = ? AND done_at = 0`, us(now), id)
	return err
}

// RetryInbound releases owner's lease and schedules the next try.
func (s *Store) RetryInbound(ctx context.Context, id int64, owner string, next time.Time, lastError string) error {
	_, err := s.exec(ctx, `UPDATE inbound_events SET next_attempt_at = ?, lease_until = 0, lease_owner = '', last_error = ?
		WHERE id = ? AND lease_owner = ? AND done_at = 0 AND failed_at = 0`, us(next), truncate(lastError, 500), id, owner)
	return err
}

// FailInbound gives up on a row.
func (s *Store) FailInbound(ctx context.Context, id int64, owner string, now time.Time, lastError string) error {
	_, err := s.exec(ctx, `UPDATE inbound_events SET failed_at = ?, lease_until = 0, lease_owner = '', last_error = ?
		WHERE id = ? AND lease_owner = ? AND done_at = 0 AND failed_at = 0`, us(now), truncate(lastError, 500), id, owner)
	return err
}

// InboundByKey returns a row with its handling state (tests, CLI).
func (s *Store) InboundByKey(ctx context.Context, source, key string) (pairing.InboundItem, error) {
	var rows []inboundRow
	if err := s.writer.WithContext(ctx).Raw(`SELECT `+inboundColumns+` FROM inbound_events WHERE source = ? AND event_key = ?`, source, key).Scan(&rows).Error; err != nil {
		return pairing.InboundItem{}, translate(err)
	}
	if len(rows) == 0 {
		return pairing.InboundItem{}, pairing.ErrNotFound
	}
	return rows[0].item(), nil
}

// PruneInbound drops handled or given-up rows stored before `before`, and
// returns how many. Pending rows stay: the worker gives up on them after
// its max age.
func (s *Store) PruneInbound(ctx context.Context, before time.Time) (int64, error) {
	return s.exec(ctx, `DELETE FROM inbound_events WHERE created_at < ? AND (done_at <> 0 OR failed_at <> 0)`, us(before))
}
