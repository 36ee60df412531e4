package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.InboundQueue = (*Store)(nil)

// inboundRow is a row of inbound_events (migration 0005).
type inboundRow struct {
	ID            int64  `db:"id"`
	Source        string `db:"source"`
	EventKey      string `db:"event_key"`
	Grp           string `db:"grp"`
	Payload       []byte `db:"payload"`
	Attempts      int    `db:"attempts"`
	NextAttemptAt int64  `db:"next_attempt_at"`
	LeaseOwner    string `db:"lease_owner"`
	LeaseUntil    int64  `db:"lease_until"`
	DoneAt        int64  `db:"done_at"`
	FailedAt      int64  `db:"failed_at"`
	LastError     string `db:"last_error"`
	CreatedAt     int64  `db:"created_at"`
}

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
	insert := func(r repo, part []pairing.InboundEvent) (int64, error) {
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
		return r.exec(ctx, q.String(), args...)
	}
	if len(evs) <= inboundChunk {
		n, err := insert(s.repo, evs)
		return int(n), err
	}
	total := 0
	err := s.atomic(ctx, func(tx repo) error {
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
		return 0, err
	}
	return total, nil
}

// ClaimInbound leases up to limit claimable rows to owner: only the
// oldest pending row of a (source, grp) is claimable, so one person's
// events are handled one at a time, in order.
func (s *Store) ClaimInbound(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]pairing.InboundItem, error) {
	rows, err := claimJobs[inboundRow](ctx, s, inboundJobs, owner, now, lease, limit)
	return converted(rows, err, inboundRow.item)
}

// FinishInbound marks a row handled, whoever holds the lease.
func (s *Store) FinishInbound(ctx context.Context, id int64, now time.Time) error {
	return s.finishJob(ctx, inboundJobs, id, now)
}

// RetryInbound releases owner's lease and schedules the next try.
func (s *Store) RetryInbound(ctx context.Context, id int64, owner string, next time.Time, lastError string) error {
	return s.releaseJob(ctx, inboundJobs, "next_attempt_at", id, owner, next, lastError)
}

// FailInbound gives up on a row.
func (s *Store) FailInbound(ctx context.Context, id int64, owner string, now time.Time, lastError string) error {
	return s.releaseJob(ctx, inboundJobs, "failed_at", id, owner, now, lastError)
}

// InboundByKey returns a row with its handling state (tests, CLI).
func (s *Store) InboundByKey(ctx context.Context, source, key string) (pairing.InboundItem, error) {
	return getConverted(ctx, s.repo, s.w, inboundRow.item, `SELECT `+columnsOf[inboundRow]("")+` FROM inbound_events
		WHERE source = ? AND event_key = ?`, source, key)
}

// PruneInbound drops handled or given-up rows stored before `before`, and
// returns how many. Pending rows stay: the worker gives up on them after
// its max age.
func (s *Store) PruneInbound(ctx context.Context, before time.Time) (int64, error) {
	return s.exec(ctx, `DELETE FROM inbound_events WHERE created_at < ? AND (done_at <> 0 OR failed_at <> 0)`, us(before))
}

// InboundPayloads returns the stored payloads of a source, oldest first
// (tests, inspection).
func (s *Store) InboundPayloads(ctx context.Context, source string) ([][]byte, error) {
	rows, err := listRows[inboundRow](ctx, s.repo, s.w, `SELECT `+columnsOf[inboundRow]("")+` FROM inbound_events
		WHERE source = ? ORDER BY id`, source)
	return converted(rows, err, func(r inboundRow) []byte { return r.Payload })
}

// RewriteInboundPayloadsOnce runs fn on every stored payload and stores
// what it returns where that differs, then records name in the settings
// table: a later call with the same name does nothing. Rows are read in
// batches by id, so the rewrite never holds the writer for long.
// Instances doing it at once both rewrite; fn must leave its own output
// unchanged (sealing seals only tokens in the clear).
func (s *Store) RewriteInboundPayloadsOnce(ctx context.Context, name string, fn func([]byte) ([]byte, error)) (int, error) {
	if _, err := s.setting(ctx, name); err == nil {
		return 0, nil
	} else if !errors.Is(err, pairing.ErrNotFound) {
		return 0, err
	}
	type row struct {
		ID      int64  `db:"id"`
		Payload []byte `db:"payload"`
	}
	changed := 0
	for after := int64(0); ; {
		rows, err := listScanned(ctx, s.repo, s.w, func(r *row) []any { return []any{&r.ID, &r.Payload} },
			`SELECT id, payload FROM inbound_events WHERE id > ? ORDER BY id LIMIT 200`, after)
		if err != nil {
			return changed, err
		}
		for _, r := range rows {
			out, err := fn(r.Payload)
			if err != nil {
				return changed, err
			}
			if bytes.Equal(out, r.Payload) {
				continue
			}
			if _, err := s.exec(ctx, `UPDATE inbound_events SET payload = ? WHERE id = ?`, out, r.ID); err != nil {
				return changed, err
			}
			changed++
		}
		if len(rows) < 200 {
			break
		}
		after = rows[len(rows)-1].ID
	}
	return changed, s.putSetting(ctx, name, []byte(time.Now().UTC().Format(time.RFC3339)))
}
