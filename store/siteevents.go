package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.EventOutbox = (*Store)(nil)

// outboxRow is a site event with its delivery columns (migration 0004).
type outboxRow struct {
	ID            int64  `gorm:"column:id"`
	Type          string `gorm:"column:type"`
	UserID        string `gorm:"column:user_id"`
	Payload       string `gorm:"column:payload"`
	CreatedAt     int64  `gorm:"column:created_at"`
	Attempts      int    `gorm:"column:attempts"`
	NextAttemptAt int64  `gorm:"column:next_attempt_at"`
	LeaseOwner    string `gorm:"column:lease_owner"`
	LeaseUntil    int64  `gorm:"column:lease_until"`
	DeliveredAt   int64  `gorm:"column:delivered_at"`
	FailedAt      int64  `gorm:"column:failed_at"`
	LastError     string `gorm:"column:last_error"`
}

const outboxColumns = `id, type, user_id, payload, created_at, attempts, next_attempt_at, lease_owner, lease_until, delivered_at, failed_at, last_error`

func (r outboxRow) event() pairing.OutboxEvent {
	return pairing.OutboxEvent{
		SiteEvent: pairing.SiteEvent{ID: r.ID, Type: r.Type, UserID: r.UserID, Payload: []byte(r.Payload), CreatedAt: tm(r.CreatedAt)},
		Attempts:  r.Attempts, NextAttemptAt: tm(r.NextAttemptAt), LeaseOwner: r.LeaseOwner, LeaseUntil: tm(r.LeaseUntil),
		DeliveredAt: tm(r.DeliveredAt), FailedAt: tm(r.FailedAt), LastError: r.LastError,
	}
}

// ClaimSiteEvents leases up to limit deliverable events to owner: the
// claim is pairing.Deliverable in one statement (pending, due, not leased,
// and no earlier pending event of the same user).
func (s *Store) ClaimSiteEvents(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]pairing.OutboxEvent, error) {
	rows, err := claimJobs[outboxRow](ctx, s, siteEventJobs, owner, now, lease, limit)
	if err != nil {
		return nil, err
	}
	out := make([]pairing.OutboxEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}

// MarkSiteEventDelivered records a 2xx answer. Whoever holds the claim
// now, the site has the event, so the owner is not checked.
func (s *Store) MarkSiteEventDelivered(ctx context.Context, id int64, now time.Time) error {
	return s.finishJob(ctx, siteEventJobs, id, now)
}

// RetrySiteEvent releases owner's claim and schedules the next try.
func (s *Store) RetrySiteEvent(ctx context.Context, id int64, owner string, next time.Time, lastError string) error {
	return s.retryJob(ctx, siteEventJobs, id, owner, next, lastError)
}

// FailSiteEvent gives up on the event.
func (s *Store) FailSiteEvent(ctx context.Context, id int64, owner string, now time.Time, lastError string) error {
	return s.failJob(ctx, siteEventJobs, id, owner, now, lastError)
}

// SiteEventDelivery returns an event with its delivery state (tests, CLI).
func (s *Store) SiteEventDelivery(ctx context.Context, id int64) (pairing.OutboxEvent, error) {
	var rows []outboxRow
	if err := s.writer.WithContext(ctx).Raw(`SELECT `+outboxColumns+` FROM site_events WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return pairing.OutboxEvent{}, translate(err)
	}
	if len(rows) == 0 {
		return pairing.OutboxEvent{}, pairing.ErrNotFound
	}
	return rows[0].event(), nil
}

// PruneSiteEvents drops events written before `before`, delivered or not,
// and returns how many.
func (s *Store) PruneSiteEvents(ctx context.Context, before time.Time) (int64, error) {
	return s.exec(ctx, `DELETE FROM site_events WHERE created_at < ?`, us(before))
}
