package pairing

import (
	"context"
	"encoding/hex"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// NotificationWorkerConfig tunes a NotificationWorker. Zero values take
// the defaults of DefaultJobsConfig.
type NotificationWorkerConfig struct {
	// PollInterval is how often the outbox is looked at when idle (a
	// message queued by this process wakes the worker at once).
	PollInterval time.Duration
	// BatchSize is the most deliveries claimed at once.
	BatchSize int
	// Lease is how long a claimed delivery belongs to this worker. After a
	// crash, another worker (or this one, restarted) sends it again once
	// the lease has passed: delivery is at least once.
	Lease time.Duration
	// SendTimeout bounds one send. A claimed delivery is only started while
	// its lease has at least this long to run.
	SendTimeout time.Duration
	// Parallel is the most sends in flight.
	Parallel int
	// MaxAttempts: a delivery that failed this many times (temporary
	// failures, rate limits included) fails for good.
	MaxAttempts int
	// MaxAge: a delivery not delivered this long after the message was
	// accepted fails for good.
	MaxAge time.Duration
	// BackoffMin and BackoffMax bound the wait before a retry: BackoffMin
	// doubled per failed attempt, capped at BackoffMax, of which a random
	// half is waited (jitter). A platform's retry_after replaces it.
	BackoffMin time.Duration
	BackoffMax time.Duration
}

func (c NotificationWorkerConfig) withDefaults() NotificationWorkerConfig {
	d := DefaultJobsConfig().NotificationWorkerConfig()
	c.PollInterval = orDefault(c.PollInterval, d.PollInterval)
	c.Lease = orDefault(c.Lease, d.Lease)
	c.SendTimeout = orDefault(c.SendTimeout, d.SendTimeout)
	c.MaxAge = orDefault(c.MaxAge, d.MaxAge)
	c.BackoffMin = orDefault(c.BackoffMin, d.BackoffMin)
	c.BackoffMax = max(orDefault(c.BackoffMax, d.BackoffMax), c.BackoffMin)
	c.BatchSize = orDefault(c.BatchSize, d.BatchSize)
	c.Parallel = orDefault(c.Parallel, d.Parallel)
	c.MaxAttempts = orDefault(c.MaxAttempts, d.MaxAttempts)
	return c
}

// NotificationWorker sends queued notifications. Several workers, in one process or
// in several instances sharing PostgreSQL, may run on one outbox.
type NotificationWorker struct {
	svc    *Service
	cfg    NotificationWorkerConfig
	policy RetryPolicy
	log    *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error
	id     string
	seq    atomic.Int64
	jobs   *runner[ClaimedDelivery]

	mu       sync.Mutex
	pacers   map[string]*pacer
	chatFree map[int64]time.Time // lead id -> earliest start of its next send
}

// NotificationWorkerOption changes a NotificationWorker.
type NotificationWorkerOption func(*NotificationWorker)

// WithSleep replaces how the worker waits (tests step a fake clock).
func WithSleep(f func(ctx context.Context, d time.Duration) error) NotificationWorkerOption {
	return func(w *NotificationWorker) { w.sleep = f }
}

// NewNotificationWorker builds a worker on the service's store, clock and randomness.
func (s *Service) NewNotificationWorker(cfg NotificationWorkerConfig, opts ...NotificationWorkerOption) (*NotificationWorker, error) {
	b, err := randomBytes(s.rand, 8)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &NotificationWorker{
		svc: s, cfg: cfg, log: s.log.With("component", "outbox"),
		policy: RetryPolicy{Initial: cfg.BackoffMin, Max: cfg.BackoffMax, RetryFor: cfg.MaxAge, MaxAttempts: cfg.MaxAttempts, Expires: true},
		sleep:  sleepCtx, id: hex.EncodeToString(b),
		pacers: map[string]*pacer{}, chatFree: map[int64]time.Time{},
	}
	for _, o := range opts {
		o(w)
	}
	w.jobs = &runner[ClaimedDelivery]{
		// A send and its record outlive a shutdown (bounded by
		// SendTimeout): a message that went out is recorded.
		name: "outbox", slots: cfg.Parallel, ahead: cfg.BatchSize, poll: cfg.PollInterval, grace: cfg.SendTimeout,
		nudge: s.queued(), log: w.log,
		claim:   w.claim,
		admit:   w.admit,
		release: w.release,
		do:      w.deliver,
		record:  func(ctx context.Context, d ClaimedDelivery, err error, _ bool) { w.record(ctx, d, err) },
	}
	return w, nil
}

// Config returns the settings in force, defaults filled in.
func (w *NotificationWorker) Config() NotificationWorkerConfig { return w.cfg }

// Run sends due deliveries until ctx ends. Sends in flight then finish
// (bounded by SendTimeout) and are recorded; deliveries claimed but not
// started are handed back.
func (w *NotificationWorker) Run(ctx context.Context) error { return w.jobs.run(ctx) }

// RunOnce claims one batch of due deliveries, sends them paced, records
// the results, and returns how many it claimed.
func (w *NotificationWorker) RunOnce(ctx context.Context) (int, error) { return w.jobs.once(ctx) }

// claim takes up to limit due deliveries, the chats that may receive now
// first.
func (w *NotificationWorker) claim(ctx context.Context, limit int) ([]ClaimedDelivery, error) {
	claimed, err := w.svc.store.ClaimDeliveries(ctx, ClaimRequest{
		Now: w.svc.now(), Lease: w.cfg.Lease, Limit: limit, Token: w.id + "-" + strconv.FormatInt(w.seq.Add(1), 10),
	})
	if err != nil || len(claimed) == 0 {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	sort.SliceStable(claimed, func(a, b int) bool {
		return w.chatFree[claimed[a].LeadID].Before(w.chatFree[claimed[b].LeadID])
	})
	return claimed, nil
}

// admit waits until the chat may receive again and the channel's pace
// allows one more message; a slot was taken first, so a 429 met by a
// send in flight pauses the sends not started yet. A delivery that could
// no longer be sent within its lease is handed back: another worker may
// claim it any moment.
func (w *NotificationWorker) admit(ctx context.Context, d ClaimedDelivery) error {
	if err := ctx.Err(); err != nil {
		return err // shutting down: hand back what has not started
	}
	w.mu.Lock()
	chatFree := w.chatFree[d.LeadID]
	w.mu.Unlock()
	if wait := chatFree.Sub(w.svc.now()); wait > 0 {
		if err := w.sleep(ctx, wait); err != nil {
			return err
		}
	}
	if dc, ok := w.svc.deliverer(d.Channel); ok {
		p := w.pacer(d.Channel, dc.pace)
		for {
			wait := p.reserve(w.svc.now())
			if wait <= 0 {
				break
			}
			if err := w.sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
	if w.svc.now().Add(w.cfg.SendTimeout).After(d.LeaseUntil) {
		return errHandBack
	}
	return nil
}

func (w *NotificationWorker) pacer(channel string, pace Pace) *pacer {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.pacers[channel]
	if !ok {
		p = &pacer{}
		if pace.RatePerSecond > 0 {
			p.interval = time.Duration(float64(time.Second) / pace.RatePerSecond)
		}
		w.pacers[channel] = p
	}
	return p
}

// deliver sends one claimed delivery. Its error is a *DeliveryError (or
// one deliveryErrorOf reads as temporary); what a failure changes beyond
// the delivery (the channel's pause, the lead's block) happens here.
func (w *NotificationWorker) deliver(ctx context.Context, d ClaimedDelivery) error {
	if w.policy.expired(d.maxAgeFrom(), w.svc.now()) {
		return &DeliveryError{Permanent: true, Reason: ReasonExpired, Detail: "not delivered within " + w.cfg.MaxAge.String()}
	}
	dc, ok := w.svc.deliverer(d.Channel)
	if !ok {
		return &DeliveryError{Permanent: true, Reason: ReasonChannelMissing}
	}
	lead, err := w.svc.store.LeadByID(ctx, d.LeadID)
	if err != nil {
		w.log.Warn("outbox: lead lookup failed", "delivery", d.ID, "err", err)
		return &DeliveryError{Reason: ReasonUnavailable, Detail: "lead lookup failed"}
	}
	if lead.Blocked {
		return &DeliveryError{Permanent: true, Reason: ReasonBlocked}
	}
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	err = dc.d.Deliver(sendCtx, OutboundMessage{DeliveryID: d.ID, MessageID: d.MessageID, Lead: lead, Text: d.Text, Buttons: d.Buttons})
	cancel()
	done := w.svc.now()
	w.mu.Lock()
	w.chatFree[d.LeadID] = done.Add(dc.pace.PerChatInterval)
	if len(w.chatFree) > 100_000 {
		for id, t := range w.chatFree {
			if t.Before(done) {
				delete(w.chatFree, id)
			}
		}
	}
	w.mu.Unlock()
	if err == nil {
		return nil
	}
	de := deliveryErrorOf(err)
	if de.RetryAfter > 0 {
		w.pacer(d.Channel, dc.pace).pause(done.Add(de.RetryAfter))
	}
	if de.Blocked {
		// The existing path: marks the lead and writes lead.blocked.
		if err := w.svc.SetBlocked(context.WithoutCancel(ctx), lead.Key(), true); err != nil {
			w.log.Error("outbox: mark lead blocked", "channel", d.Channel, "err", err)
		}
	}
	return de
}

// record stores the outcome of a send: delivered, failed for good, or
// queued for a retry (the platform's retry_after plus up to 10 %, else
// the policy's backoff) unless the policy gives up.
func (w *NotificationWorker) record(ctx context.Context, d ClaimedDelivery, err error) {
	if err == nil {
		w.finish(ctx, d, DeliveryResult{Status: DeliveryDelivered})
		return
	}
	de := deliveryErrorOf(err)
	if de.Permanent {
		w.finish(ctx, d, DeliveryResult{Status: DeliveryFailed, LastError: clipError(de.Error())})
		return
	}
	wait := w.policy.Delay(d.Attempts, w.svc.rand)
	if de.RetryAfter > 0 {
		wait = de.RetryAfter + time.Duration(randomFraction(w.svc.rand)*float64(de.RetryAfter/10))
	}
	next, why := w.policy.decide(d.maxAgeFrom(), d.Attempts, w.svc.now(), wait)
	switch why {
	case tooManyAttempts:
		w.finish(ctx, d, DeliveryResult{Status: DeliveryFailed,
			LastError: clipError(ReasonTooManyAttempts + " (" + strconv.Itoa(d.Attempts) + "): " + de.Error())})
	case tooOld:
		w.finish(ctx, d, DeliveryResult{Status: DeliveryFailed, LastError: clipError(ReasonExpired + ": " + de.Error())})
	default:
		w.finish(ctx, d, DeliveryResult{Status: DeliveryQueued, NextAttemptAt: next, LastError: clipError(de.Error())})
	}
}

// release hands an unsent delivery back without counting the attempt.
func (w *NotificationWorker) release(d ClaimedDelivery) {
	w.finish(context.Background(), d, DeliveryResult{Status: DeliveryQueued, NextAttemptAt: w.svc.now(), Uncount: true})
}

// finish records a result; a final one writes its site event in the same
// transaction.
func (w *NotificationWorker) finish(ctx context.Context, d ClaimedDelivery, res DeliveryResult) {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	var recorded bool
	err := w.svc.store.Tx(ctx, func(r Repo) error {
		now := w.svc.now()
		ok, err := r.FinishDelivery(ctx, d.ID, d.LeaseToken, res, now)
		if err != nil || !ok {
			return err
		}
		recorded = true
		if !res.Status.Final() {
			return nil
		}
		typ := EventMessageDelivered
		data := map[string]any{"message_id": d.MessageID, "delivery_id": d.ID, "channel": d.Channel,
			"status": string(res.Status), "attempts": d.Attempts}
		if res.Status == DeliveryFailed {
			typ = EventMessageFailed
			data["reason"] = res.LastError
		}
		return w.svc.siteEvent(ctx, r, typ, d.UserID, data)
	})
	if err == nil && recorded {
		w.svc.obs.JobFinished(QueueNotify, jobResult(res))
	}
	switch {
	case err != nil:
		// The lease will pass and the delivery be tried again.
		w.log.Error("outbox: record delivery result", "delivery", d.ID, "status", res.Status, "err", err)
	case !recorded:
		w.log.Warn("outbox: lease lost before the result was recorded; another worker has the delivery", "delivery", d.ID)
	case res.Status == DeliveryFailed:
		w.log.Info("outbox: delivery failed", "delivery", d.ID, "channel", d.Channel, "reason", res.LastError)
	case res.Status == DeliveryQueued && !res.Uncount:
		w.log.Debug("outbox: delivery will be retried", "delivery", d.ID, "channel", d.Channel, "at", res.NextAttemptAt, "reason", res.LastError)
	}
}

// pacer spaces the sends through one channel: one every interval, and
// none while the platform asked us to pause.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
	paused   time.Time
}

// reserve takes the next send slot if it has come, and otherwise says how
// long to wait before asking again.
func (p *pacer) reserve(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.next
	if p.paused.After(at) {
		at = p.paused
	}
	if at.After(now) {
		return at.Sub(now)
	}
	if p.interval > 0 {
		// Slots missed while idle are not saved up: no bursts.
		p.next = now.Add(p.interval)
	}
	return 0
}

func (p *pacer) pause(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.paused) {
		p.paused = until
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
