package pairing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// EventOutbox is the site_events table seen as an outbox. Claims are
// exclusive across instances: a claimed event is not claimed again until
// its lease ends, so in normal operation no event is sent twice; a crash
// mid-send lets the lease run out and another instance sends it again
// (at least once).
type EventOutbox interface {
	// ClaimSiteEvents leases to owner, until now+lease, up to limit events
	// that Deliverable allows at now, counts one attempt on each, and
	// returns them oldest first.
	ClaimSiteEvents(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]OutboxEvent, error)
	// MarkSiteEventDelivered records a 2xx answer.
	MarkSiteEventDelivered(ctx context.Context, id int64, now time.Time) error
	// RetrySiteEvent releases owner's claim and schedules the next try at
	// next. It changes nothing when owner no longer holds the claim.
	RetrySiteEvent(ctx context.Context, id int64, owner string, next time.Time, lastError string) error
	// FailSiteEvent gives up on the event (it stays listed for polling).
	// It changes nothing when owner no longer holds the claim.
	FailSiteEvent(ctx context.Context, id int64, owner string, now time.Time, lastError string) error
}

// EventSender delivers one event to the site. nil means the site took it
// (2xx). An error wrapping ErrEventRejected ends the event's delivery;
// any other error is retried. The error text is logged and stored, so it
// must hold no secret (no URL with credentials, no signature).
type EventSender interface {
	SendEvent(ctx context.Context, e SiteEvent, body []byte) error
}

// ErrEventRejected is the site saying "never send this again" (410 Gone).
var ErrEventRejected = errors.New("site rejected the event permanently")

// DispatcherConfig tunes a Dispatcher. Zero values take the defaults.
type DispatcherConfig struct {
	Policy RetryPolicy
	// Lease is how long a claim holds an event; longer than a send may
	// take (the sender's timeout), so a live send never loses its claim.
	Lease time.Duration
	// Batch bounds how many events one pass claims; Workers is how many it
	// sends at once. A pass claims no more than it can start sending at
	// once (at most Workers): a claimed event waiting for a send slot
	// would see its lease run out and another instance send it too.
	Batch   int
	Workers int
	// PollInterval is the wait after a pass that found nothing to send.
	PollInterval time.Duration
	// Owner names this dispatcher in claims; empty: random.
	Owner  string
	Clock  Clock
	Rand   io.Reader
	Logger *slog.Logger
}

// Dispatcher sends the outbox's events to the site.
type Dispatcher struct {
	outbox EventOutbox
	sender EventSender
	cfg    DispatcherConfig
}

// NewDispatcher builds a dispatcher over an outbox and a sender.
func NewDispatcher(outbox EventOutbox, sender EventSender, cfg DispatcherConfig) *Dispatcher {
	if cfg.Policy == (RetryPolicy{}) {
		cfg.Policy = DefaultRetryPolicy()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = CryptoRand
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		cfg.Owner = hex.EncodeToString(b)
	}
	return &Dispatcher{outbox: outbox, sender: sender, cfg: cfg}
}

// Run sends until ctx ends: a pass, and again at once while passes find
// work, else after PollInterval. Sends in flight when ctx ends are
// abandoned and their events released for the next start.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		n, err := d.RunOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := d.cfg.PollInterval
		switch {
		case err != nil:
			d.cfg.Logger.Warn("site events: claim failed", "err", err)
		case n > 0:
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// RunOnce claims one batch (no more than Workers events), sends it (one
// event per user at most, see Deliverable, so the sends run in parallel)
// and records each result. It returns how many events it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	limit := min(d.cfg.Batch, d.cfg.Workers)
	evs, err := d.outbox.ClaimSiteEvents(ctx, d.cfg.Owner, d.cfg.Clock.Now().UTC(), d.cfg.Lease, limit)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, d.cfg.Workers)
	var wg sync.WaitGroup
	for _, e := range evs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.deliver(ctx, e)
		}()
	}
	wg.Wait()
	return len(evs), nil
}

// deliver sends one claimed event and records the outcome. Recording uses
// a context that outlives a shutdown, so a result is not lost.
func (d *Dispatcher) deliver(ctx context.Context, e OutboxEvent) {
	log := d.cfg.Logger.With("event_id", e.ID, "type", e.Type, "attempt", e.Attempts)
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	body, err := EventBody(e.SiteEvent)
	if err == nil {
		err = d.sender.SendEvent(ctx, e.SiteEvent, body)
	}
	now := d.cfg.Clock.Now().UTC()
	switch {
	case err == nil:
		if err := d.outbox.MarkSiteEventDelivered(rec, e.ID, now); err != nil {
			log.Warn("site events: recording a delivery failed; the event will be sent again", "err", err)
			return
		}
		log.Debug("site event delivered")
	case ctx.Err() != nil:
		// Shutting down: release the claim so the next start sends it
		// without waiting for the lease.
		if err := d.outbox.RetrySiteEvent(rec, e.ID, d.cfg.Owner, now, "interrupted by shutdown"); err != nil {
			log.Warn("site events: releasing a claim failed", "err", err)
		}
	case errors.Is(err, ErrEventRejected):
		log.Warn("site events: the site rejected the event (410); not retrying", "err", err)
		if err := d.outbox.FailSiteEvent(rec, e.ID, d.cfg.Owner, now, err.Error()); err != nil {
			log.Warn("site events: recording a failure failed", "err", err)
		}
	default:
		next, giveUp := d.cfg.Policy.Next(e.CreatedAt, e.Attempts, now, d.cfg.Rand)
		if giveUp {
			log.Error("site events: giving up after the retry window", "err", err, "retry_for", d.cfg.Policy.RetryFor)
			err = d.outbox.FailSiteEvent(rec, e.ID, d.cfg.Owner, now, err.Error())
		} else {
			log.Warn("site events: delivery failed; will retry", "err", err, "next_attempt_at", next)
			err = d.outbox.RetrySiteEvent(rec, e.ID, d.cfg.Owner, next, err.Error())
		}
		if err != nil {
			log.Warn("site events: recording a failure failed", "err", err)
		}
	}
}
