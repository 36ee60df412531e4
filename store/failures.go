package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

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
	Row    outboxDeliveryRow `gorm:"embedded"`
	UserID string            `gorm:"column:user_id"`
}

// FailedDeliveries lists up to limit failed deliveries, the most recently
// failed first.
func (s *Store) FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error) {
	var rows []failedDeliveryRow
	err := s.reader.WithContext(ctx).Raw(`SELECT d.*, m.user_id FROM outbox_deliveries d
		JOIN outbox_messages m ON m.id = d.message_id
		WHERE d.status = 'failed' ORDER BY d.finished_at DESC, d.id DESC LIMIT ?`, limit).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]FailedDelivery, len(rows))
	for i, r := range rows {
		out[i] = FailedDelivery{Delivery: r.Row.delivery(), UserID: r.UserID}
	}
	return out, nil
}

// RetryFailedDelivery puts a failed delivery back in the queue: queued,
// due at now, attempts back to 0, and RequeuedAt = now (its max age counts
// from the retry). The last error stays until the next attempt replaces
// it. One audit row records the operator's retry, in the same transaction.
// A delivery that is not failed is left alone: *NotFailedError; an
// unknown id: pairing.ErrNotFound. Of two concurrent retries one wins.
func (s *Store) RetryFailedDelivery(ctx context.Context, id int64, now time.Time) (FailedDelivery, error) {
	var out FailedDelivery
	err := s.writer.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		n := us(now)
		res := tx.Exec(`UPDATE outbox_deliveries SET status = 'queued', attempts = 0, next_attempt_at = ?,
			lease_until = 0, lease_token = '', finished_at = 0, requeued_at = ?, updated_at = ?
			WHERE id = ? AND status = 'failed'`, n, n, n, id)
		if res.Error != nil {
			return res.Error
		}
		var rows []failedDeliveryRow
		if err := tx.Raw(`SELECT d.*, m.user_id FROM outbox_deliveries d
			JOIN outbox_messages m ON m.id = d.message_id WHERE d.id = ?`, id).Scan(&rows).Error; err != nil {
			return err
		}
		switch {
		case len(rows) == 0:
			return pairing.ErrNotFound
		case res.RowsAffected == 0:
			return &NotFailedError{State: rows[0].Row.Status}
		}
		out = FailedDelivery{Delivery: rows[0].Row.delivery(), UserID: rows[0].UserID}
		return txRepo(tx, s.driver).AddAudit(ctx, pairing.AuditEvent{
			At: now, Action: "delivery_retry", Outcome: "operator", UserID: out.UserID,
			Detail: fmt.Sprintf("delivery %d of message %d (%s)", out.ID, out.MessageID, out.Channel),
		})
	})
	if err != nil {
		return FailedDelivery{}, operatorError(err)
	}
	return out, nil
}

// FailedSiteEvents lists up to limit site events the dispatcher gave up
// on, the most recently given up first (through site_events_failed).
func (s *Store) FailedSiteEvents(ctx context.Context, limit int) ([]pairing.OutboxEvent, error) {
	var rows []outboxRow
	if err := s.reader.WithContext(ctx).Raw(`SELECT `+outboxColumns+` FROM site_events
		WHERE failed_at <> 0 ORDER BY failed_at DESC, id DESC LIMIT ?`, limit).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]pairing.OutboxEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}

// RetryFailedSiteEvent makes a given-up site event pending again, due at
// now, attempts back to 0; the last error stays until the next attempt.
// The dispatcher's retry window (jobs.site_events.max_age) still counts from
// the event's creation, so an event older than that gets one more try.
// One audit row records the operator's retry. An event that is not failed
// is left alone: *NotFailedError; an unknown id: pairing.ErrNotFound.
func (s *Store) RetryFailedSiteEvent(ctx context.Context, id int64, now time.Time) (pairing.OutboxEvent, error) {
	var out pairing.OutboxEvent
	err := s.writer.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE site_events SET failed_at = 0, attempts = 0, next_attempt_at = ?, lease_owner = '', lease_until = 0
			WHERE id = ? AND failed_at <> 0 AND delivered_at = 0`, us(now), id)
		if res.Error != nil {
			return res.Error
		}
		var rows []outboxRow
		if err := tx.Raw(`SELECT `+outboxColumns+` FROM site_events WHERE id = ?`, id).Scan(&rows).Error; err != nil {
			return err
		}
		switch {
		case len(rows) == 0:
			return pairing.ErrNotFound
		case res.RowsAffected == 0:
			state := "pending"
			if rows[0].DeliveredAt != 0 {
				state = "delivered"
			}
			return &NotFailedError{State: state}
		}
		out = rows[0].event()
		return txRepo(tx, s.driver).AddAudit(ctx, pairing.AuditEvent{
			At: now, Action: "site_event_retry", Outcome: "operator", UserID: out.UserID,
			Detail: fmt.Sprintf("event %d (%s)", out.ID, out.Type),
		})
	})
	if err != nil {
		return pairing.OutboxEvent{}, operatorError(err)
	}
	return out, nil
}

// operatorError passes a *NotFailedError through as it is and translates
// the rest.
func operatorError(err error) error {
	var nf *NotFailedError
	if errors.As(err, &nf) {
		return nf
	}
	return translate(err)
}
