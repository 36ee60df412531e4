package pairing

import (
	"context"
	"errors"
	"io"
	"log/slog"
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

// SiteEventWorkerConfig tunes a SiteEventWorker. Zero values take the defaults.
type SiteEventWorkerConfig struct {
	Policy RetryPolicy
	// Lease is how long a claim holds an event; longer than a send may
	// take (the sender's timeout), so a live send never loses its claim.
	// See LeaseFor.
	Lease time.Duration
	// Workers is how many events are sent at once; a claim takes no more
	// than there are free workers, so a claimed event never waits for a
	// send slot while its lease runs out.
	Workers int
	// PollInterval is the wait after a pass that found nothing to send.
	PollInterval time.Duration
	// Grace is how long sends in flight may finish after Run's context
	// ends; then they are abandoned and their events released.
	Grace time.Duration
	// Owner names this worker in claims; empty: random.
	Owner  string
	Clock  Clock
	Rand   io.Reader
	Logger *slog.Logger
}

// SiteEventWorker sends the outbox's events to the site.
type SiteEventWorker struct {
	outbox   EventOutbox
	sender   EventSender
	cfg      SiteEventWorkerConfig
	jobs     *runner[OutboxEvent]
	outcomes *leasedQueue
}

// NewSiteEventWorker builds a worker over an outbox and a sender.
func NewSiteEventWorker(outbox EventOutbox, sender EventSender, cfg SiteEventWorkerConfig) *SiteEventWorker {
	def := DefaultJobsConfig().SiteEventWorkerConfig(nil)
	if cfg.Policy == (RetryPolicy{}) {
		cfg.Policy = def.Policy
	}
	cfg.Lease = orDefault(cfg.Lease, def.Lease)
	cfg.PollInterval = orDefault(cfg.PollInterval, def.PollInterval)
	cfg.Grace = orDefault(cfg.Grace, DefaultGrace)
	cfg.Workers = orDefault(cfg.Workers, def.Workers)
	workerDefaults(&cfg.Clock, &cfg.Rand, &cfg.Logger, &cfg.Owner)
	d := &SiteEventWorker{outbox: outbox, sender: sender, cfg: cfg, outcomes: &leasedQueue{
		queue: QueueSiteEvents, name: "site events", owner: cfg.Owner, policy: cfg.Policy, clock: cfg.Clock, rand: cfg.Rand,
		obs: NopObserver{}, permanent: func(err error) bool { return errors.Is(err, ErrEventRejected) },
		finish: outbox.MarkSiteEventDelivered, retry: outbox.RetrySiteEvent, fail: outbox.FailSiteEvent,
	}}
	d.jobs = &runner[OutboxEvent]{
		name: "site events", slots: cfg.Workers, poll: cfg.PollInterval, grace: cfg.Grace, log: cfg.Logger,
		claim: func(ctx context.Context, limit int) ([]OutboxEvent, error) {
			return outbox.ClaimSiteEvents(ctx, cfg.Owner, cfg.Clock.Now().UTC(), cfg.Lease, limit)
		},
		release: func(e OutboxEvent) { d.record(context.Background(), e, nil, true) },
		do:      d.send,
		record:  d.record,
	}
	return d
}

// Run sends until ctx ends: it keeps up to Workers events in flight,
// claiming more when one is done and every PollInterval. Sends in flight
// when ctx ends get Grace, then are abandoned and their events released
// for the next start.
func (d *SiteEventWorker) Run(ctx context.Context) error { return d.jobs.run(ctx) }

// Observe has the worker report each try to o. Call it before Run.
func (d *SiteEventWorker) Observe(o Observer) { d.outcomes.obs = o }

// RunOnce claims one batch (no more than Workers events), sends it (one
// event per user at most, see Deliverable, so the sends run in parallel)
// and records each result. It returns how many events it claimed.
func (d *SiteEventWorker) RunOnce(ctx context.Context) (int, error) { return d.jobs.once(ctx) }

func (d *SiteEventWorker) send(ctx context.Context, e OutboxEvent) error {
	body, err := EventBody(e.SiteEvent)
	if err != nil {
		return err
	}
	return d.sender.SendEvent(ctx, e.SiteEvent, body)
}

// record stores the outcome of one send (see leasedQueue.record).
func (d *SiteEventWorker) record(ctx context.Context, e OutboxEvent, err error, interrupted bool) {
	log := d.cfg.Logger.With("event_id", e.ID, "type", e.Type, "attempt", e.Attempts)
	d.outcomes.record(ctx, log, e.ID, e.CreatedAt, e.Attempts, err, interrupted)
}
