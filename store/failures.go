package store

import (
	"context"
	"fmt"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// What an operator sees of failures and how they put them back in the
// queue (pairingd messages|events failed|retry).

// FailedDelivery is a given-up notification delivery with the site user
// it was for.
type FailedDelivery struct {
	pairing.Delivery
	UserID string
}

// NotFailedError is the answer to retrying something that is not failed:
// State says what it is instead (queued, sending, delivered, skipped;
// pending or delivered for a site event).
type NotFailedError struct{ State string }

func (e *NotFailedError) Error() string { return "it is " + e.State + ", not failed" }

type failedDeliveryRow struct {
	Row    outboxDeliveryRow
	UserID string
}

// failedDeliverySQL selects a delivery with the site user of its message.
var failedDeliverySQL = `SELECT ` + columnsOf[outboxDeliveryRow]("d.") + `, m.user_id FROM outbox_deliveries d
	JOIN outbox_messages m ON m.id = d.message_id `

func (r *failedDeliveryRow) fields() []any { return append(fieldsOf(&r.Row), &r.UserID) }

// FailedDeliveries lists up to limit failed deliveries, the most recently
// failed first.
func (s *Store) FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error) {
	rows, err := listScanned(ctx, s.repo, s.r, (*failedDeliveryRow).fields,
		failedDeliverySQL+`WHERE d.status = 'failed' ORDER BY d.finished_at DESC, d.id DESC LIMIT ?`, limit)
	return converted(rows, err, func(r failedDeliveryRow) FailedDelivery {
		return FailedDelivery{Delivery: r.Row.delivery(), UserID: r.UserID}
	})
}

// RetryFailedDelivery puts a failed delivery back in the queue: queued,
// due at now, attempts back to 0, and RequeuedAt = now (its max age counts
// from the retry). The last error stays until the next attempt replaces
// it. One audit row records the operator's retry, in the same transaction.
// A delivery that is not failed is left alone: *NotFailedError; an
// unknown id: pairing.ErrNotFound. Of two concurrent retries one wins.
func (s *Store) RetryFailedDelivery(ctx context.Context, id int64, now time.Time) (FailedDelivery, error) {
	var out FailedDelivery
	err := s.atomic(ctx, func(tx repo) error {
		n := us(now)
		changed, err := tx.exec(ctx, `UPDATE outbox_deliveries SET status = 'queued', attempts = 0, next_attempt_at = ?,
			lease_until = 0, lease_token = '', finished_at = 0, requeued_at = ?, updated_at = ?
			WHERE id = ? AND status = 'failed'`, n, n, n, id)
		if err != nil {
			return err
		}
		var row failedDeliveryRow
		if err := tx.queryOne(ctx, tx.w, failedDeliverySQL+`WHERE d.id = ?`, []any{id}, row.fields()...); err != nil {
			return err
		}
		if changed == 0 {
			return &NotFailedError{State: row.Row.Status}
		}
		out = FailedDelivery{Delivery: row.Row.delivery(), UserID: row.UserID}
		return tx.AddAudit(ctx, pairing.AuditEvent{
			At: now, Action: "delivery_retry", Outcome: "operator", UserID: out.UserID,
			Detail: fmt.Sprintf("delivery %d of message %d (%s)", out.ID, out.MessageID, out.Channel),
		})
	})
	if err != nil {
		return FailedDelivery{}, err
	}
	return out, nil
}

// FailedSiteEvents lists up to limit site events the site event worker gave up
// on, the most recently given up first (through site_events_failed).
func (s *Store) FailedSiteEvents(ctx context.Context, limit int) ([]pairing.OutboxEvent, error) {
	rows, err := listRows[siteEventRow](ctx, s.repo, s.r, `SELECT `+columnsOf[siteEventRow]("")+` FROM site_events
		WHERE failed_at <> 0 ORDER BY failed_at DESC, id DESC LIMIT ?`, limit)
	return converted(rows, err, siteEventRow.event)
}

// RetryFailedSiteEvent makes a given-up site event pending again, due at
// now, attempts back to 0; the last error stays until the next attempt.
// The site event worker's retry window (jobs.max_age) still counts from
// the event's creation, so an event older than that gets one more try.
// One audit row records the operator's retry. An event that is not failed
// is left alone: *NotFailedError; an unknown id: pairing.ErrNotFound.
func (s *Store) RetryFailedSiteEvent(ctx context.Context, id int64, now time.Time) (pairing.OutboxEvent, error) {
	var out pairing.OutboxEvent
	err := s.atomic(ctx, func(tx repo) error {
		changed, err := tx.exec(ctx, `UPDATE site_events SET failed_at = 0, attempts = 0, next_attempt_at = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND failed_at <> 0 AND delivered_at = 0`, us(now), id)
		if err != nil {
			return err
		}
		row, err := getRow[siteEventRow](ctx, tx, tx.w, `SELECT `+columnsOf[siteEventRow]("")+` FROM site_events WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if changed == 0 {
			state := "pending"
			if row.DeliveredAt != 0 {
				state = "delivered"
			}
			return &NotFailedError{State: state}
		}
		out = row.event()
		return tx.AddAudit(ctx, pairing.AuditEvent{
			At: now, Action: "site_event_retry", Outcome: "operator", UserID: out.UserID,
			Detail: fmt.Sprintf("event %d (%s)", out.ID, out.Type),
		})
	})
	if err != nil {
		return pairing.OutboxEvent{}, err
	}
	return out, nil
}
