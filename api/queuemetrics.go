package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// QueueStatsReader reads the durable queues' sizes; the store implements
// it. It is called at every scrape of /metrics, so it must be cheap.
type QueueStatsReader interface {
	QueueStats(ctx context.Context) (pairing.QueueStats, error)
}

// queueGauges are the queue gauges of one scrape.
type queueGauges struct {
	enabled bool // a QueueStatsReader is configured
	ok      bool // it answered
	stats   pairing.QueueStats
	now     time.Time
}

// readQueues asks the store for the queue sizes, within checkTimeout so
// a hung database cannot hang the scrape. A failure is logged and shows
// as pairingd_queue_stats_up 0, without the other gauges; the counters are
// served either way.
func (s *server) readQueues(ctx context.Context) queueGauges {
	if s.queues == nil {
		return queueGauges{}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	g := queueGauges{enabled: true, now: s.clock.Now()}
	var err error
	if g.stats, err = s.queues.QueueStats(ctx); err != nil {
		s.log.Warn("metrics: reading the queue sizes failed", "err", err)
		return g
	}
	g.ok = true
	return g
}

// writeTo writes the gauges in the text exposition format, after the
// counters of Metrics.WriteTo.
func (g queueGauges) writeTo(w io.Writer) error {
	if !g.enabled {
		return nil
	}
	cw := &countingWriter{w: bufio.NewWriter(w)}
	gauge := func(name, help string) {
		fmt.Fprintf(cw, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	up := 0
	if g.ok {
		up = 1
	}
	gauge("pairingd_queue_stats_up", "1 if the queue gauges were read from the database at this scrape, 0 if that failed.")
	fmt.Fprintf(cw, "pairingd_queue_stats_up %d\n", up)
	if g.ok {
		q := g.stats
		gauge("pairingd_notify_deliveries", "Notification deliveries by status: queued (waiting), sending (claimed by a worker), failed (given up). Database-wide.")
		fmt.Fprintf(cw, "pairingd_notify_deliveries{status=\"failed\"} %d\n", q.Deliveries.Failed)
		fmt.Fprintf(cw, "pairingd_notify_deliveries{status=\"queued\"} %d\n", q.Deliveries.Pending)
		fmt.Fprintf(cw, "pairingd_notify_deliveries{status=\"sending\"} %d\n", q.Deliveries.Running)
		age := g.ageOf(q.Deliveries.OldestPending)
		gauge("pairingd_notify_oldest_pending_age_seconds", "Age of the oldest queued or sending notification delivery; 0 when none is pending.")
		fmt.Fprintf(cw, "pairingd_notify_oldest_pending_age_seconds %g\n", age)
		gauge("pairingd_site_events", "Site events by delivery state: pending (not delivered yet), failed (given up). Database-wide.")
		fmt.Fprintf(cw, "pairingd_site_events{state=\"failed\"} %d\n", q.SiteEvents.Failed)
		fmt.Fprintf(cw, "pairingd_site_events{state=\"pending\"} %d\n", q.SiteEvents.Unfinished())
		gauge("pairingd_inbound_events_pending", "Platform webhook events stored and not handled yet. Database-wide.")
		fmt.Fprintf(cw, "pairingd_inbound_events_pending %d\n", q.Inbound.Unfinished())
		queues := []struct {
			name string
			s    pairing.QueueStat
		}{{"inbound", q.Inbound}, {"notify", q.Deliveries}, {"site_events", q.SiteEvents}}
		gauge("pairingd_queue_jobs", "Jobs of each durable queue by state: pending (waiting for a try), running (claimed by a worker), failed (given up). Database-wide.")
		for _, j := range queues {
			fmt.Fprintf(cw, "pairingd_queue_jobs{queue=%q,state=\"failed\"} %d\n", j.name, j.s.Failed)
			fmt.Fprintf(cw, "pairingd_queue_jobs{queue=%q,state=\"pending\"} %d\n", j.name, j.s.Pending)
			fmt.Fprintf(cw, "pairingd_queue_jobs{queue=%q,state=\"running\"} %d\n", j.name, j.s.Running)
		}
		gauge("pairingd_queue_oldest_pending_age_seconds", "Age of each durable queue's oldest pending or running job; 0 when none is.")
		for _, j := range queues {
			fmt.Fprintf(cw, "pairingd_queue_oldest_pending_age_seconds{queue=%q} %g\n", j.name, g.ageOf(j.s.OldestPending))
		}
	}
	if err := cw.w.Flush(); err != nil && cw.err == nil {
		cw.err = err
	}
	return cw.err
}

// ageOf is the seconds since t at the scrape; 0 for the zero time.
func (g queueGauges) ageOf(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(0, g.now.Sub(t).Seconds())
}
