package pairing

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The job engine. Three durable queues share it: inbound platform events
// (InboundWorker), site events to the site's webhook (SiteEventWorker) and
// notification deliveries (NotificationWorker). Each is a table whose rows a worker
// claims with a lease (exclusive across instances: FOR UPDATE SKIP LOCKED
// on PostgreSQL, the single writer on SQLite), runs, and then finishes,
// retries or fails. What differs per queue is only how a row is claimed
// and run and how its outcome is recorded; the loop, the retry policy,
// the shutdown rules and the error clipping are here, once.

// RetryPolicy is when a failed job is tried again: exponential backoff
// with jitter, until an age and, optionally, a number of tries.
type RetryPolicy struct {
	// Initial is the wait after the first failure; each further failure
	// doubles it, up to Max.
	Initial time.Duration
	Max     time.Duration
	// RetryFor is how long after the job was written it is still retried.
	// A failure at or after created+RetryFor gives up; the last retry is
	// scheduled at created+RetryFor at the latest, so a job is tried for
	// at least RetryFor.
	RetryFor time.Duration
	// MaxAttempts gives up after this many tries; 0: no limit.
	MaxAttempts int
	// Expires makes RetryFor a hard limit: a job is never run after it (a
	// notification a day late is worse than none), so a retry that would
	// come due later gives up now instead of being moved to the deadline.
	Expires bool
}

// Backoff is the wait after the n-th failed try (n >= 1) before jitter:
// Initial * 2^(n-1), at most Max.
func (p RetryPolicy) Backoff(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Delay is Backoff with jitter: a random wait in [Backoff/2, Backoff], so
// that jobs that failed together (the site was down) do not all come
// back at the same moment.
func (p RetryPolicy) Delay(n int, rnd io.Reader) time.Duration {
	d := p.Backoff(n)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(randomFraction(rnd)*float64(d-half))
}

// Next decides after the n-th failed try of a job written at created:
// try again at next, or give up.
func (p RetryPolicy) Next(created time.Time, n int, now time.Time, rnd io.Reader) (next time.Time, giveUp bool) {
	next, why := p.decide(created, n, now, p.Delay(n, rnd))
	return next, why != keepTrying
}

// giveUpReason says why decide gave up.
type giveUpReason int

const (
	keepTrying giveUpReason = iota
	tooManyAttempts
	tooOld
)

// decide is Next with the wait chosen by the caller (a platform's
// retry_after replaces the backoff), saying why it gave up.
func (p RetryPolicy) decide(created time.Time, n int, now time.Time, wait time.Duration) (time.Time, giveUpReason) {
	if p.MaxAttempts > 0 && n >= p.MaxAttempts {
		return time.Time{}, tooManyAttempts
	}
	deadline := created.Add(p.RetryFor)
	if !now.Before(deadline) {
		return time.Time{}, tooOld
	}
	next := now.Add(wait)
	if next.After(deadline) {
		if p.Expires {
			return time.Time{}, tooOld
		}
		next = deadline
	}
	return next, keepTrying
}

// expired tells whether a job written at created may no longer run.
func (p RetryPolicy) expired(created, now time.Time) bool {
	return p.Expires && now.After(created.Add(p.RetryFor))
}

// randomFraction is uniform in [0, 1); 0.5 when rnd fails.
func randomFraction(rnd io.Reader) float64 {
	var b [8]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return 0.5
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// JobDefaults are the engine settings every queue shares unless its
// config says otherwise.
const (
	// DefaultGrace is how long jobs in hand may finish after shutdown
	// begins before their context ends.
	DefaultGrace = 3 * time.Second
	// recordTimeout bounds the write of an outcome, which outlives a
	// shutdown so that an outcome is not lost.
	recordTimeout = 10 * time.Second
	// maxLastErrorBytes bounds a stored last error.
	maxLastErrorBytes = 500
)

// LeaseFor is the lease of a job whose run is bounded by timeout: long
// enough that a live run never loses its claim (a claimed batch of
// notifications is paced out, so its last send may start well after the
// claim, and each run ends with a record), short enough that a crashed
// instance's jobs come back soon.
func LeaseFor(timeout time.Duration) time.Duration {
	return 6 * timeout
}

// errHandBack from a runner's admit hands the one job back unstarted.
var errHandBack = errors.New("job handed back unstarted")

// runner is the loop every queue runs: it keeps up to slots jobs in hand,
// claiming more when one finishes, when nudged, and every poll. When ctx
// ends it claims nothing more; jobs in hand get grace to finish, then
// their context ends, and record sees interrupted.
type runner[T any] struct {
	name  string // in log lines
	slots int
	// ahead, when set, is how many jobs one claim takes while every slot is
	// free: a queue that paces its starts (admit) claims ahead so it can
	// start first the jobs that may go now.
	ahead int
	poll  time.Duration
	grace time.Duration
	nudge <-chan struct{}
	log   *slog.Logger

	claim func(ctx context.Context, limit int) ([]T, error)
	// admit, when set, waits until a claimed job may start. errHandBack
	// hands that job back; any other error hands back the rest.
	admit func(ctx context.Context, job T) error
	// release hands back a claimed job that was not started.
	release func(job T)
	// do runs a job; record stores its outcome (err nil: done), with
	// interrupted set when the run failed after shutdown began.
	do     func(ctx context.Context, job T) error
	record func(ctx context.Context, job T, err error, interrupted bool)
}

// run runs jobs until ctx ends.
func (r *runner[T]) run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, r.slots)
	freed := make(chan struct{}, 1)
	poll := time.NewTicker(r.poll)
	defer poll.Stop()
	for {
		free := cap(slots) - len(slots)
		limit := free
		if r.ahead > 0 {
			limit = 0
			if free == cap(slots) {
				limit = r.ahead
			}
		}
		claimFailed := false
		if limit > 0 {
			jobs, err := r.claim(ctx, limit)
			if ctx.Err() != nil {
				r.handBack(jobs)
				return ctx.Err()
			}
			if err != nil {
				claimFailed = true
				r.log.Warn(r.name+": claim failed", "err", err)
			}
			r.start(ctx, jobs, slots, &wg, func() {
				select {
				case freed <- struct{}{}:
				default:
				}
			})
			if len(jobs) == limit && ctx.Err() == nil {
				continue // there may be more
			}
		}
		if claimFailed {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-poll.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.nudge:
		case <-freed:
		case <-poll.C:
		}
	}
}

// once claims one batch (ahead, else slots), runs it, and returns how
// many jobs it claimed. Tests and tools use it instead of run.
func (r *runner[T]) once(ctx context.Context) (int, error) {
	limit := r.slots
	if r.ahead > 0 {
		limit = r.ahead
	}
	jobs, err := r.claim(ctx, limit)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	var wg sync.WaitGroup
	r.start(ctx, jobs, make(chan struct{}, r.slots), &wg, func() {})
	wg.Wait()
	return len(jobs), nil
}

// drain runs once until nothing is due and returns how many jobs ran.
func (r *runner[T]) drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.once(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// start starts the claimed jobs in order, each in a slot once admitted;
// when ctx ends or admit fails, the jobs not started are handed back.
func (r *runner[T]) start(ctx context.Context, jobs []T, slots chan struct{}, wg *sync.WaitGroup, freed func()) {
	for i, job := range jobs {
		// A free slot is taken even when ctx has ended: a job claimed with
		// a slot for it starts, and gets the grace like the others.
		acquired := false
		select {
		case slots <- struct{}{}:
			acquired = true
		default:
			select {
			case slots <- struct{}{}:
				acquired = true
			case <-ctx.Done():
			}
		}
		var err error
		if acquired && r.admit != nil {
			err = r.admit(ctx, job)
		}
		if errors.Is(err, errHandBack) {
			r.release(job)
			<-slots
			continue
		}
		if !acquired || err != nil {
			if acquired {
				<-slots
			}
			r.handBack(jobs[i:])
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.handle(ctx, job)
			<-slots
			freed()
		}()
	}
}

func (r *runner[T]) handBack(jobs []T) {
	for _, job := range jobs {
		r.release(job)
	}
}

// handle runs one job with the grace and records the outcome. A panic is
// a failure, not a crash.
func (r *runner[T]) handle(parent context.Context, job T) {
	ctx, cancel := graceContext(parent, r.grace)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = errors.New(r.name + " handler panicked")
			}
		}()
		return r.do(ctx, job)
	}()
	cancel()
	rec, rcancel := context.WithTimeout(context.WithoutCancel(parent), recordTimeout)
	defer rcancel()
	r.record(rec, job, err, err != nil && parent.Err() != nil)
}

// graceContext is a context that survives the end of parent by grace, so
// work in hand is finished rather than cut in the middle.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}

// leasedQueue records the tries of the jobs of a queue whose rows name
// their lease's owner (inbound events, site events): the one place where
// such a job is released, finished, retried or given up, its last error
// kept and the try counted.
type leasedQueue struct {
	queue  string // QueueInbound, QueueSiteEvents
	name   string // in log lines
	owner  string
	policy RetryPolicy
	clock  Clock
	rand   io.Reader
	obs    Observer
	// permanent tells a failure that trying again cannot cure.
	permanent func(error) bool
	// The queue's store calls; retry and fail change nothing when owner
	// no longer holds the lease.
	finish func(ctx context.Context, id int64, now time.Time) error
	retry  func(ctx context.Context, id int64, owner string, next time.Time, lastError string) error
	fail   func(ctx context.Context, id int64, owner string, now time.Time, lastError string) error
}

// record stores the outcome of one try of the job id, written at created
// and tried attempts times: interrupted (shutdown, or claimed and not
// started) releases the lease so the next start or another instance runs
// it at once; a failure is retried after the policy's backoff until the
// job is too old, or given up at once when permanent.
func (q *leasedQueue) record(ctx context.Context, log *slog.Logger, id int64, created time.Time, attempts int, err error, interrupted bool) {
	now := q.clock.Now().UTC()
	var result string
	var stored error
	switch {
	case interrupted:
		result, stored = JobReleased, q.retry(ctx, id, q.owner, now, "interrupted by shutdown")
	case err == nil:
		log.Debug(q.name + ": done")
		result, stored = JobDone, q.finish(ctx, id, now)
	case q.permanent(err):
		log.Error(q.name+": refused for good; not retrying", "err", err)
		result, stored = JobFailed, q.fail(ctx, id, q.owner, now, clipError(err.Error()))
	default:
		next, giveUp := q.policy.Next(created, attempts, now, q.rand)
		if giveUp {
			log.Error(q.name+": giving up on an event after its max age", "err", err, "max_age", q.policy.RetryFor.String())
			result, stored = JobFailed, q.fail(ctx, id, q.owner, now, clipError(err.Error()))
		} else {
			log.Warn(q.name+": failed; will retry", "err", err, "next_attempt_at", next)
			result, stored = JobRetried, q.retry(ctx, id, q.owner, next, clipError(err.Error()))
		}
	}
	q.obs.JobFinished(q.queue, result)
	if stored != nil {
		log.Warn(q.name+": recording the outcome failed; the job may run again", "result", result, "err", stored)
	}
}

// workerDefaults gives a leased queue's worker the system clock, crypto
// randomness, a logger that discards and a random name in leases where
// its config names none.
func workerDefaults(clock *Clock, rnd *io.Reader, log **slog.Logger, owner *string) {
	if *clock == nil {
		*clock = SystemClock{}
	}
	if *rnd == nil {
		*rnd = CryptoRand
	}
	if *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
	if *owner == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		*owner = hex.EncodeToString(b)
	}
}

// clipError keeps a stored error short.
func clipError(s string) string {
	if len(s) <= maxLastErrorBytes {
		return s
	}
	cut := maxLastErrorBytes
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// orDefault is v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
