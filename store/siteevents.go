package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.EventOutbox = (*Store)(nil)

// siteEventRow is a site event with its delivery columns (migration 0004).
type siteEventRow struct {
	ID            int64  `db:"id"`
	Type          string `db:"type"`
	UserID        string `db:"user_id"`
	Payload       string `db:"payload"`
	CreatedAt     int64  `db:"created_at"`
	Attempts      int    `db:"attempts"`
	NextAttemptAt int64  `db:"next_attempt_at"`
	LeaseOwner    string `db:"lease_owner"`
	LeaseUntil    int64  `db:"lease_until"`
	DeliveredAt   int64  `db:"delivered_at"`
	FailedAt      int64  `db:"failed_at"`
	LastError     string `db:"last_error"`
}

func (r siteEventRow) event() pairing.OutboxEvent {
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
	rows, err := claimJobs[siteEventRow](ctx, s, siteEventJobs, owner, now, lease, limit)
	return converted(rows, err, siteEventRow.event)
}

// MarkSiteEventDelivered records a 2xx answer. Whoever holds the claim
// now, the site has the event, so the owner is not checked.
func (s *Store) MarkSiteEventDelivered(ctx context.Context, id int64, now time.Time) error {
	return s.finishJob(ctx, siteEventJobs, id, now)
}

// RetrySiteEvent releases owner's claim and schedules the next try.
func (s *Store) RetrySiteEvent(ctx context.Context, id int64, owner string, next time.Time, lastError string) error {
	return s.releaseJob(ctx, siteEventJobs, "next_attempt_at", id, owner, next, lastError)
}

// FailSiteEvent gives up on the event.
func (s *Store) FailSiteEvent(ctx context.Context, id int64, owner string, now time.Time, lastError string) error {
	return s.releaseJob(ctx, siteEventJobs, "failed_at", id, owner, now, lastError)
}

// SiteEventDelivery returns an event with its delivery state (tests, CLI).
func (s *Store) SiteEventDelivery(ctx context.Context, id int64) (pairing.OutboxEvent, error) {
	return getConverted(ctx, s.repo, s.w, siteEventRow.event, `SELECT `+columnsOf[siteEventRow]("")+` FROM site_events WHERE id = ?`, id)
}

func (r repo) AddSiteEvent(ctx context.Context, e pairing.SiteEvent) error {
	payload := string(e.Payload)
	if payload == "" {
		payload = "{}"
	}
	_, err := r.exec(ctx, `INSERT INTO site_events (type, user_id, payload, created_at) VALUES (?, ?, ?, ?)`,
		e.Type, e.UserID, payload, us(e.CreatedAt))
	return err
}

// SiteEventsAfter lists site events with id > after, oldest first.
func (s *Store) SiteEventsAfter(ctx context.Context, after int64, limit int) ([]pairing.SiteEvent, error) {
	rows, err := listRows[siteEventRow](ctx, s.repo, s.r, `SELECT `+columnsOf[siteEventRow]("")+` FROM site_events
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	return converted(rows, err, func(r siteEventRow) pairing.SiteEvent { return r.event().SiteEvent })
}

// PruneSiteEvents drops events written before `before`, delivered or not,
// and returns how many.
func (s *Store) PruneSiteEvents(ctx context.Context, before time.Time) (int64, error) {
	return s.exec(ctx, `DELETE FROM site_events WHERE created_at < ?`, us(before))
}
