package pairingtest

import (
	"context"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.EventOutbox = (*Outbox)(nil)

// Outbox is an in-memory pairing.EventOutbox over a MemStore's site
// events: the claim follows pairing.Deliverable, the reference rule the
// SQL claim implements.
type Outbox struct {
	m     *MemStore
	mu    sync.Mutex
	state map[int64]pairing.OutboxEvent
}

// NewOutbox returns an outbox over m's site events.
func NewOutbox(m *MemStore) *Outbox { return &Outbox{m: m, state: map[int64]pairing.OutboxEvent{}} }

// all returns every event with its delivery state; o.mu is held.
func (o *Outbox) all() []pairing.OutboxEvent {
	var out []pairing.OutboxEvent
	for _, e := range o.m.SiteEvents() {
		st, ok := o.state[e.ID]
		if !ok {
			st = pairing.OutboxEvent{SiteEvent: e}
		}
		out = append(out, st)
	}
	return out
}

// Events returns every event with its delivery state, oldest first.
func (o *Outbox) Events() []pairing.OutboxEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all()
}

// ClaimSiteEvents leases the events pairing.Deliverable allows.
func (o *Outbox) ClaimSiteEvents(_ context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]pairing.OutboxEvent, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	all := o.all()
	byID := map[int64]pairing.OutboxEvent{}
	for _, e := range all {
		byID[e.ID] = e
	}
	var out []pairing.OutboxEvent
	for _, id := range pairing.Deliverable(all, now, limit) {
		e := byID[id]
		e.LeaseOwner, e.LeaseUntil = owner, now.Add(lease)
		e.Attempts++
		o.state[id] = e
		out = append(out, e)
	}
	return out, nil
}

// MarkSiteEventDelivered records a delivery.
func (o *Outbox) MarkSiteEventDelivered(_ context.Context, id int64, now time.Time) error {
	return o.update(id, "", func(e *pairing.OutboxEvent) {
		e.DeliveredAt, e.LeaseUntil, e.LastError = now, time.Time{}, ""
	})
}

// RetrySiteEvent releases the claim and schedules the next try.
func (o *Outbox) RetrySiteEvent(_ context.Context, id int64, owner string, next time.Time, lastError string) error {
	return o.update(id, owner, func(e *pairing.OutboxEvent) {
		e.NextAttemptAt, e.LeaseUntil, e.LeaseOwner, e.LastError = next, time.Time{}, "", lastError
	})
}

// FailSiteEvent gives up on the event.
func (o *Outbox) FailSiteEvent(_ context.Context, id int64, owner string, now time.Time, lastError string) error {
	return o.update(id, owner, func(e *pairing.OutboxEvent) {
		e.FailedAt, e.LeaseUntil, e.LeaseOwner, e.LastError = now, time.Time{}, "", lastError
	})
}

// update changes a pending event; with an owner, only while owner holds it.
func (o *Outbox) update(id int64, owner string, fn func(*pairing.OutboxEvent)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.all() {
		if e.ID != id {
			continue
		}
		if e.DeliveredAt.IsZero() && (owner == "" || e.LeaseOwner == owner) {
			fn(&e)
			o.state[id] = e
		}
		return nil
	}
	return pairing.ErrNotFound
}
