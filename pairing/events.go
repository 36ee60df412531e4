package pairing

import (
	"context"
	"encoding/json"
	"sort"
	"time"
)

// Events to the site. Every site event (link.created, link.deleted,
// lead.blocked ...) is written to the site_events table in the same
// transaction as the change it reports. From there it reaches the site
// twice over: a SiteEventWorker POSTs it to the configured webhook (an outbox:
// retried with backoff, in order per user), and GET /v1/events lists it for
// sites that poll. Both show the same JSON, EventJSON.

// EventJSON is an event as the site sees it, in the webhook body and in
// GET /v1/events. The shape is stable: new event types and new members of
// data may be added; existing members keep their meaning.
type EventJSON struct {
	// ID increases with every event; the site dedupes by it (delivery is
	// at least once) and polls with it as the cursor.
	ID   int64  `json:"id"`
	Type string `json:"type"`
	// CreatedAt is when the change happened, RFC 3339 in UTC.
	CreatedAt string `json:"created_at"`
	// UserID is the site user the event is about; null when the person is
	// not linked (e.g. lead.blocked of an unlinked person).
	UserID *string `json:"user_id"`
	// Data is the type's own members, e.g. {"person_id":7,"channel":
	// "telegram","by":"site"} for link.created.
	Data json.RawMessage `json:"data"`
}

// envelopeKeys are members the stored payload repeats from the envelope;
// they are left out of data.
var envelopeKeys = []string{"type", "at", "user_id"}

// EventOf renders a stored event in the site's shape.
func EventOf(e SiteEvent) EventJSON {
	out := EventJSON{ID: e.ID, Type: e.Type, CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano), Data: json.RawMessage("{}")}
	if e.UserID != "" {
		id := e.UserID
		out.UserID = &id
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(e.Payload, &data) == nil && data != nil {
		for _, k := range envelopeKeys {
			delete(data, k)
		}
		if b, err := json.Marshal(data); err == nil { // map keys sorted: a stable body
			out.Data = b
		}
	}
	return out
}

// EventBody is the exact webhook body of an event.
func EventBody(e SiteEvent) ([]byte, error) { return json.Marshal(EventOf(e)) }

// Polling limits of GET /v1/events.
const (
	DefaultEventPage = 100
	MaxEventPage     = 1000
	// EventSettle hides events younger than this from polling. On
	// PostgreSQL ids are taken before commit, so a transaction that commits
	// late can make a smaller id appear after a larger one was listed; a
	// cursor past it would skip it. The delay lets such transactions finish.
	EventSettle = 2 * time.Second
)

// EventLog is what polling needs of the store.
type EventLog interface {
	// SiteEventsAfter lists site events with id > after, oldest first.
	SiteEventsAfter(ctx context.Context, after int64, limit int) ([]SiteEvent, error)
}

// SiteEvents is GET /v1/events: up to limit events after the cursor, in id
// order, and the cursor to pass next (the last id listed, or after when
// nothing new). more tells whether more events wait past the page.
func (s *Service) SiteEvents(ctx context.Context, after int64, limit int) (events []SiteEvent, next int64, more bool, err error) {
	if after < 0 {
		return nil, 0, false, invalid("after", "must be 0 or a previous next cursor")
	}
	if limit == 0 {
		limit = DefaultEventPage
	}
	if limit < 1 || limit > MaxEventPage {
		return nil, 0, false, invalid("limit", "must be 1..1000")
	}
	evs, err := s.store.SiteEventsAfter(ctx, after, limit+1)
	if err != nil {
		return nil, 0, false, err
	}
	cutoff := s.now().Add(-EventSettle)
	for i, e := range evs {
		if e.CreatedAt.After(cutoff) {
			evs, more = evs[:i], true
			break
		}
	}
	if len(evs) > limit {
		evs, more = evs[:limit], true
	}
	next = after
	if len(evs) > 0 {
		next = evs[len(evs)-1].ID
	}
	return evs, next, more, nil
}

// OutboxEvent is a site event with its delivery state.
type OutboxEvent struct {
	SiteEvent
	// Attempts counts the claims (tries) so far, this one included.
	Attempts      int
	NextAttemptAt time.Time // zero: at once
	LeaseOwner    string
	LeaseUntil    time.Time // a claim holds the event until then
	DeliveredAt   time.Time
	FailedAt      time.Time // given up
	LastError     string
}

// Done reports whether the event left the outbox: delivered or given up.
func (e OutboxEvent) Done() bool { return !e.DeliveredAt.IsZero() || !e.FailedAt.IsZero() }

// Claimable reports whether the event itself may be tried at now: pending,
// due, and not held by a live lease. Deliverable adds the ordering rule.
func (e OutboxEvent) Claimable(now time.Time) bool {
	return !e.Done() && !e.NextAttemptAt.After(now) && !e.LeaseUntil.After(now)
}

// Deliverable is the ordering rule, the reference for the store's claim
// query: the ids that may be sent at now, oldest first, at most limit. An
// event for site user U may be sent only when every earlier event of U is
// done (delivered or given up): a later event of U waits while an earlier
// one is pending, retrying or in flight. Events without a user id do not
// wait for anything. So one batch holds at most one event per user.
func Deliverable(events []OutboxEvent, now time.Time, limit int) []int64 {
	sorted := append([]OutboxEvent(nil), events...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	blocked := map[string]bool{}
	var out []int64
	for _, e := range sorted {
		if e.Done() {
			continue
		}
		if e.UserID != "" {
			if blocked[e.UserID] {
				continue
			}
			blocked[e.UserID] = true
		}
		if e.Claimable(now) && len(out) < limit {
			out = append(out, e.ID)
		}
	}
	return out
}

// siteEvent writes a site event with the common fields.
func (s *Service) siteEvent(ctx context.Context, r Repo, typ, userID string, data map[string]any) error {
	now := s.now()
	if userID != "" {
		data["user_id"] = userID
	}
	data["type"] = typ
	data["at"] = now.Format(time.RFC3339Nano)
	payload, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return r.AddSiteEvent(ctx, SiteEvent{Type: typ, UserID: userID, Payload: payload, CreatedAt: now})
}
