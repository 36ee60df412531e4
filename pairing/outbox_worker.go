package pairing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerConfig tunes the outbox worker. Zero values take the defaults of
// DefaultWorkerConfig.
type WorkerConfig struct {
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

// DefaultWorkerConfig returns the documented defaults.
func DefaultWorkerConfig() WorkerConfig {
	return WorkerConfig{
		PollInterval: time.Second,
		BatchSize:    100,
		Lease:        time.Minute,
		SendTimeout:  10 * time.Second,
		Parallel:     8,
		MaxAttempts:  10,
		MaxAge:       24 * time.Hour,
		BackoffMin:   5 * time.Second,
		BackoffMax:   30 * time.Minute,
	}
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	d := DefaultWorkerConfig()
	for _, p := range []struct{ v, d *time.Duration }{
		{&c.PollInterval, &d.PollInterval}, {&c.Lease, &d.Lease}, {&c.SendTimeout, &d.SendTimeout},
		{&c.MaxAge, &d.MaxAge}, {&c.BackoffMin, &d.BackoffMin}, {&c.BackoffMax, &d.BackoffMax},
	} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	for _, p := range []struct{ v, d *int }{
		{&c.BatchSize, &d.BatchSize}, {&c.Parallel, &d.Parallel}, {&c.MaxAttempts, &d.MaxAttempts},
	} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	return c
}

// Worker sends queued notifications. Several workers, in one process or
// in several instances sharing PostgreSQL, may run on one outbox.
type Worker struct {
	svc   *Service
	cfg   WorkerConfig
	log   *slog.Logger
	sleep func(ctx context.Context, d time.Duration) error
	id    string
	seq   atomic.Int64

	mu       sync.Mutex
	pacers   map[string]*pacer
	chatFree map[int64]time.Time // lead id -> earliest start of its next send
}

// WorkerOption changes a Worker.
type WorkerOption func(*Worker)

// WithSleep replaces how the worker waits (tests step a fake clock).
func WithSleep(f func(ctx context.Context, d time.Duration) error) WorkerOption {
	return func(w *Worker) { w.sleep = f }
}

// NewWorker builds a worker on the service's store, clock and randomness.
func (s *Service) NewWorker(cfg WorkerConfig, opts ...WorkerOption) (*Worker, error) {
	b, err := randomBytes(s.rand, 8)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		svc: s, cfg: cfg.withDefaults(), log: s.log.With("component", "outbox"),
		sleep: sleepCtx, id: hex.EncodeToString(b),
		pacers: map[string]*pacer{}, chatFree: map[int64]time.Time{},
	}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// Config returns the settings in force, defaults filled in.
func (w *Worker) Config() WorkerConfig { return w.cfg }

// Run sends due deliveries until ctx ends. Sends in flight then finish
// (bounded by SendTimeout) and are recorded; deliveries claimed but not
// started are handed back.
func (w *Worker) Run(ctx context.Context) error {
	wake := w.svc.queued()
	for {
		n, err := w.RunOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			w.log.Warn("outbox: claim failed", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		t := time.NewTimer(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce claims one batch of due deliveries, sends them paced, records
// the results, and returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	now := w.svc.now()
	claimed, err := w.svc.store.ClaimDeliveries(ctx, ClaimRequest{
		Now: now, Lease: w.cfg.Lease, Limit: w.cfg.BatchSize, Token: w.id + "-" + strconv.FormatInt(w.seq.Add(1), 10),
	})
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	// Chats that may receive now go first.
	ready := make([]time.Time, len(claimed))
	w.mu.Lock()
	for i, d := range claimed {
		ready[i] = w.chatFree[d.LeadID]
	}
	w.mu.Unlock()
	order := make([]int, len(claimed))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ready[order[a]].Before(ready[order[b]]) })

	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	for n, i := range order {
		d := claimed[i]
		// A send slot first, then the pace: a 429 met by a send in flight
		// pauses the sends not started yet.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() == nil {
			err = w.waitTurn(ctx, d, ready[i])
		}
		if ctx.Err() != nil || err != nil {
			for _, j := range order[n:] {
				w.release(claimed[j])
			}
			break
		}
		if w.svc.now().Add(w.cfg.SendTimeout).After(d.LeaseUntil) {
			// Too late to start within the lease: another worker may
			// claim it any moment. Hand it back instead.
			w.release(d)
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.deliver(ctx, d)
		}()
	}
	wg.Wait()
	return len(claimed), nil
}

// waitTurn waits until the chat may receive again and the channel's pace
// allows one more message.
func (w *Worker) waitTurn(ctx context.Context, d ClaimedDelivery, chatFree time.Time) error {
	if wait := chatFree.Sub(w.svc.now()); wait > 0 {
		if err := w.sleep(ctx, wait); err != nil {
			return err
		}
	}
	dc, ok := w.svc.deliverer(d.Channel)
	if !ok {
		return nil
	}
	p := w.pacer(d.Channel, dc.pace)
	for {
		wait := p.reserve(w.svc.now())
		if wait <= 0 {
			return nil
		}
		if err := w.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (w *Worker) pacer(channel string, pace Pace) *pacer {
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

// deliver sends one claimed delivery and records the result. The send
// and the record outlive ctx (bounded by SendTimeout): a message that
// went out is recorded even during a shutdown.
func (w *Worker) deliver(ctx context.Context, d ClaimedDelivery) {
	bg := context.WithoutCancel(ctx)
	now := w.svc.now()
	if now.After(d.maxAgeFrom().Add(w.cfg.MaxAge)) {
		w.finish(bg, d, DeliveryResult{Status: DeliveryFailed, LastError: ReasonExpired + ": not delivered within " + w.cfg.MaxAge.String()})
		return
	}
	dc, ok := w.svc.deliverer(d.Channel)
	if !ok {
		w.finish(bg, d, DeliveryResult{Status: DeliveryFailed, LastError: ReasonChannelMissing})
		return
	}
	lead, err := w.svc.store.LeadByID(bg, d.LeadID)
	if err != nil {
		w.log.Warn("outbox: lead lookup failed", "delivery", d.ID, "err", err)
		w.retry(bg, d, &DeliveryError{Reason: ReasonUnavailable, Detail: "lead lookup failed"})
		return
	}
	if lead.Blocked {
		w.finish(bg, d, DeliveryResult{Status: DeliveryFailed, LastError: ReasonBlocked})
		return
	}
	sendCtx, cancel := context.WithTimeout(bg, w.cfg.SendTimeout)
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
		w.finish(bg, d, DeliveryResult{Status: DeliveryDelivered})
		return
	}
	de := deliveryErrorOf(err)
	if de.RetryAfter > 0 {
		w.pacer(d.Channel, dc.pace).pause(done.Add(de.RetryAfter))
	}
	if de.Blocked {
		// The existing path: marks the lead and writes lead.blocked.
		if err := w.svc.SetBlocked(bg, lead.Key(), true); err != nil {
			w.log.Error("outbox: mark lead blocked", "channel", d.Channel, "err", err)
		}
	}
	if de.Permanent {
		w.finish(bg, d, DeliveryResult{Status: DeliveryFailed, LastError: clipError(de.Error())})
		return
	}
	w.retry(bg, d, de)
}

// retry schedules the next attempt of a temporary failure, or gives up.
func (w *Worker) retry(ctx context.Context, d ClaimedDelivery, de *DeliveryError) {
	now := w.svc.now()
	if d.Attempts >= w.cfg.MaxAttempts {
		w.finish(ctx, d, DeliveryResult{Status: DeliveryFailed,
			LastError: clipError(ReasonTooManyAttempts + " (" + strconv.Itoa(d.Attempts) + "): " + de.Error())})
		return
	}
	next := now.Add(w.backoff(d.Attempts, de.RetryAfter))
	if next.After(d.maxAgeFrom().Add(w.cfg.MaxAge)) {
		w.finish(ctx, d, DeliveryResult{Status: DeliveryFailed,
			LastError: clipError(ReasonExpired + ": " + de.Error())})
		return
	}
	w.finish(ctx, d, DeliveryResult{Status: DeliveryQueued, NextAttemptAt: next, LastError: clipError(de.Error())})
}

// backoff is the wait after the attempt-th failed attempt: the platform's
// retry_after plus up to 10 % when it gave one, else BackoffMin doubled
// per attempt, capped at BackoffMax, of which a random half to all.
func (w *Worker) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter + w.jitter(retryAfter/10)
	}
	d := w.cfg.BackoffMin
	for i := 1; i < attempt && d < w.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.BackoffMax)
	return d/2 + w.jitter(d/2)
}

// jitter is a random duration in [0, n].
func (w *Worker) jitter(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	b, err := randomBytes(w.svc.rand, 8)
	if err != nil {
		return n / 2
	}
	return time.Duration(binary.BigEndian.Uint64(b) % uint64(n+1))
}

// release hands an unsent delivery back without counting the attempt.
func (w *Worker) release(d ClaimedDelivery) {
	w.finish(context.Background(), d, DeliveryResult{Status: DeliveryQueued, NextAttemptAt: w.svc.now(), Uncount: true})
}

// finish records a result; a final one writes its site event in the same
// transaction.
func (w *Worker) finish(ctx context.Context, d ClaimedDelivery, res DeliveryResult) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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
