package pairing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The inbound queue: platform webhooks (Messenger, Telegram in webhook
// mode) store each event in one transaction and answer 200 at once; an
// InboundWorker handles the stored events later, calling the platform as
// long as it takes. The unique (source, key) of a row is the dedupe: a
// platform's retry of a delivery inserts nothing.

// InboundEvent is one platform event as a webhook stores it.
type InboundEvent struct {
	// Source names the adapter that handles the event: "messenger",
	// "telegram:<channel>".
	Source string
	// Key is the platform's id of the event (a Messenger mid, a Telegram
	// update_id): unique per source.
	Key string
	// Group is the ordering group (one person): events of a group are
	// handled one at a time, in the order they were stored.
	Group string
	// Payload is what the handler needs to handle the event again.
	Payload []byte
}

// InboundItem is a stored event with its handling state.
type InboundItem struct {
	InboundEvent
	ID            int64
	Attempts      int
	NextAttemptAt time.Time
	LeaseOwner    string
	LeaseUntil    time.Time
	DoneAt        time.Time
	FailedAt      time.Time
	LastError     string
	CreatedAt     time.Time
}

// InboundQueue is the inbound_events table. Claims are exclusive across
// instances, like EventOutbox: a claimed row is not claimed again until
// its lease ends.
type InboundQueue interface {
	// EnqueueInbound stores evs in one transaction, ignoring any whose
	// (source, key) is stored already, and returns how many were new.
	EnqueueInbound(ctx context.Context, evs []InboundEvent, now time.Time) (int, error)
	// ClaimInbound leases to owner, until now+lease, up to limit pending
	// rows that are due and not leased and have no earlier pending row of
	// their (source, group); it counts one attempt on each and returns
	// them oldest first.
	ClaimInbound(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]InboundItem, error)
	// FinishInbound marks the row handled (whoever holds the lease: the
	// effect happened).
	FinishInbound(ctx context.Context, id int64, now time.Time) error
	// RetryInbound releases owner's lease and schedules the next try at
	// next. It changes nothing when owner no longer holds the lease.
	RetryInbound(ctx context.Context, id int64, owner string, next time.Time, lastError string) error
	// FailInbound gives up on the row. It changes nothing when owner no
	// longer holds the lease.
	FailInbound(ctx context.Context, id int64, owner string, now time.Time, lastError string) error
}

// InboundHandler handles one stored event's payload. nil: done. An error
// wrapping ErrInboundDropped or ErrInvalid: never try again. Any other error: try
// again later. The error text is logged and stored, so it must hold no
// secret.
type InboundHandler func(ctx context.Context, payload []byte) error

// ErrInboundDropped is a handler saying the event can never be handled
// (a payload that does not decode): it is marked failed at once.
var ErrInboundDropped = errors.New("inbound event cannot be handled")

// InboundWorkerConfig tunes an InboundWorker. Zero values take the defaults.
type InboundWorkerConfig struct {
	// MaxAge is how long after it was stored an event is still tried: a
	// chat answer an hour late is useless. Default 1h.
	MaxAge time.Duration
	// Workers is how many events are handled at once. Default 8.
	Workers int
	// PollInterval is how often the queue is checked without a nudge (rows
	// stored by other instances, retries coming due). Default 1s.
	PollInterval time.Duration
	// Lease is how long a claim holds a row; longer than a handler may
	// take. Default 2m.
	Lease time.Duration
	// Grace is how long handlers in flight may finish after Run's context
	// ends before their context is cancelled. Default 3s.
	Grace time.Duration
	// RetryInitial and RetryMax shape the backoff between tries
	// (exponential with jitter). Defaults 2s and 5m.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// Owner names this worker in leases; empty: random.
	Owner string
	// SealKey (InboundSealKey of the server secret) seals the
	// bearer tokens in stored payloads (inboundseal.go). Empty: a random
	// key of this process, which another instance or the next start cannot
	// open (tests).
	SealKey []byte
	Clock   Clock
	Rand    io.Reader
	Logger  *slog.Logger
}

func (c InboundWorkerConfig) withDefaults() InboundWorkerConfig {
	d := DefaultJobsConfig().InboundWorkerConfig(nil)
	c.MaxAge = orDefault(c.MaxAge, d.MaxAge)
	c.PollInterval = orDefault(c.PollInterval, d.PollInterval)
	c.Lease = orDefault(c.Lease, 2*time.Minute)
	c.Grace = orDefault(c.Grace, DefaultGrace)
	c.RetryInitial = orDefault(c.RetryInitial, 2*time.Second)
	c.RetryMax = orDefault(c.RetryMax, 5*time.Minute)
	c.Workers = orDefault(c.Workers, d.Workers)
	workerDefaults(&c.Clock, &c.Rand, &c.Logger, &c.Owner)
	if len(c.SealKey) == 0 {
		c.SealKey = make([]byte, 32)
		_, _ = io.ReadFull(c.Rand, c.SealKey)
	}
	return c
}

// InboundWorker stores webhook events (Accept) and handles them (Run):
// one per process.
type InboundWorker struct {
	q        InboundQueue
	cfg      InboundWorkerConfig
	nudge    chan struct{}
	jobs     *runner[InboundItem]
	outcomes *leasedQueue
	seal     *tokenSeal

	mu       sync.RWMutex
	handlers map[string]InboundHandler
}

// NewInboundWorker builds a worker over a queue.
func NewInboundWorker(q InboundQueue, cfg InboundWorkerConfig) *InboundWorker {
	cfg = cfg.withDefaults()
	w := &InboundWorker{seal: newTokenSeal(cfg.SealKey, cfg.Rand),
		q: q, cfg: cfg, nudge: make(chan struct{}, 1), handlers: map[string]InboundHandler{},
		outcomes: &leasedQueue{
			queue: QueueInbound, name: "inbound", owner: cfg.Owner, clock: cfg.Clock, rand: cfg.Rand, obs: NopObserver{},
			policy: RetryPolicy{Initial: cfg.RetryInitial, Max: cfg.RetryMax, RetryFor: cfg.MaxAge},
			// Bad input never becomes good input: trying again cannot help.
			permanent: func(err error) bool { return errors.Is(err, ErrInboundDropped) || errors.Is(err, ErrInvalid) },
			finish:    q.FinishInbound, retry: q.RetryInbound, fail: q.FailInbound,
		},
	}
	w.jobs = &runner[InboundItem]{
		name: "inbound", slots: cfg.Workers, poll: cfg.PollInterval, grace: cfg.Grace, nudge: w.nudge, log: cfg.Logger,
		claim: func(ctx context.Context, limit int) ([]InboundItem, error) {
			return q.ClaimInbound(ctx, cfg.Owner, cfg.Clock.Now().UTC(), cfg.Lease, limit)
		},
		release: func(it InboundItem) {
			w.record(context.Background(), it, nil, true)
		},
		do:     w.call,
		record: w.record,
	}
	return w
}

// Handle registers the handler of a source. Adapters call it when they
// are built, before Run.
func (w *InboundWorker) Handle(source string, h InboundHandler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers[source] = h
}

// Accept stores a delivery's events in one transaction and wakes the
// worker. An error means nothing was stored: the webhook answers 500 so
// the platform delivers again.
func (w *InboundWorker) Accept(ctx context.Context, evs []InboundEvent) error {
	evs = w.storable(evs)
	if len(evs) == 0 {
		return nil
	}
	if err := w.sealTokens(evs); err != nil {
		return err
	}
	n, err := w.q.EnqueueInbound(ctx, evs, w.cfg.Clock.Now().UTC())
	if err != nil {
		return err
	}
	if n > 0 {
		w.Nudge()
	}
	return nil
}

// storable drops the events whose id or ordering group a database cannot
// keep as text (a NUL, invalid UTF-8: PostgreSQL refuses both): they are
// bad input from the platform, and must not take the good events of the
// same delivery with them.
func (w *InboundWorker) storable(evs []InboundEvent) []InboundEvent {
	kept := evs[:0:0]
	for _, ev := range evs {
		if !StorableText(ev.Key) || !StorableText(ev.Group) {
			w.cfg.Logger.Warn("inbound: event with an id that cannot be stored dropped", "source", ev.Source)
			continue
		}
		kept = append(kept, ev)
	}
	return kept
}

// InboundRewriter is implemented by a queue that can rewrite its stored
// payloads once (the store).
type InboundRewriter interface {
	RewriteInboundPayloadsOnce(ctx context.Context, name string, fn func([]byte) ([]byte, error)) (int, error)
}

// SealStored seals the tokens in payloads an earlier release stored in the
// clear, once per database, and returns how many payloads it changed. The
// queue must implement InboundRewriter.
func (w *InboundWorker) SealStored(ctx context.Context) (int, error) {
	rw, ok := w.q.(InboundRewriter)
	if !ok {
		return 0, errors.New("inbound: the queue cannot rewrite stored payloads")
	}
	return rw.RewriteInboundPayloadsOnce(ctx, "inbound_tokens_sealed", w.seal.seal)
}

// sealTokens replaces the bearer tokens in the events' payloads by their
// sealed form (inboundseal.go), in place: evs is storable's copy.
func (w *InboundWorker) sealTokens(evs []InboundEvent) error {
	for i := range evs {
		p, err := w.seal.seal(evs[i].Payload)
		if err != nil {
			return err
		}
		evs[i].Payload = p
	}
	return nil
}

// Nudge makes Run look at the queue now.
func (w *InboundWorker) Nudge() {
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// Run handles stored events until ctx ends: it keeps up to Workers events
// in hand, claiming more when one finishes, when Accept stored some, and
// every PollInterval. When ctx ends it claims nothing more; events in
// hand get Grace to finish, then their context ends and their rows are
// released for the next start (or another instance).
func (w *InboundWorker) Run(ctx context.Context) error { return w.jobs.run(ctx) }

// Observe has the worker report each try to o. Call it before Run.
func (w *InboundWorker) Observe(o Observer) { w.outcomes.obs = o }

// Drain handles every event that is due now, group by group in order,
// and returns how many it handled. Tests and tools use it instead of Run.
func (w *InboundWorker) Drain(ctx context.Context) (int, error) { return w.jobs.drain(ctx) }

// record stores the outcome of one claimed row (see leasedQueue.record).
func (w *InboundWorker) record(ctx context.Context, it InboundItem, err error, interrupted bool) {
	log := w.cfg.Logger.With("source", it.Source, "inbound_id", it.ID, "attempt", it.Attempts)
	w.outcomes.record(ctx, log, it.ID, it.CreatedAt, it.Attempts, err, interrupted)
}

// call runs the source's handler.
func (w *InboundWorker) call(ctx context.Context, it InboundItem) error {
	w.mu.RLock()
	h := w.handlers[it.Source]
	w.mu.RUnlock()
	if h == nil {
		return fmt.Errorf("no handler for source %q in this instance", it.Source)
	}
	return h(ctx, w.seal.open(it.Payload))
}
