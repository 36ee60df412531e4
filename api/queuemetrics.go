package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pairingd/pairingd/pairing"
)

// QueueStatsReader reads the durable queues' sizes; the store implements
// it. It is called at every scrape of /metrics, so it must be cheap.
type QueueStatsReader interface {
	QueueStats(ctx context.Context) (pairing.QueueStats, error)
}

// queueCollector reads the queue gauges at one scrape. It describes no
// series up front (an unchecked collector): which gauges it yields
// depends on whether the database answered.
type queueCollector struct {
	ctx    context.Context
	queues QueueStatsReader
	now    time.Time
	log    *slog.Logger
}

func (queueCollector) Describe(chan<- *prometheus.Desc) {}

// Collect asks the store for the queue sizes, within checkTimeout so a
// hung database cannot hang the scrape. A failure is logged and shows as
// pairingd_queue_stats_up 0, without the other gauges; the counters are
// served either way.
func (q queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(q.ctx, checkTimeout)
	defer cancel()
	stats, err := q.queues.QueueStats(ctx)
	gauge := func(name, help string, v float64, labels ...string) {
		var keys, vals []string
		for i := 0; i < len(labels); i += 2 {
			keys, vals = append(keys, labels[i]), append(vals, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, keys, nil), prometheus.GaugeValue, v, vals...)
	}
	const upHelp = "1 if the queue gauges were read from the database at this scrape, 0 if that failed."
	if err != nil {
		q.log.Warn("metrics: reading the queue sizes failed", "err", err)
		gauge("pairingd_queue_stats_up", upHelp, 0)
		return
	}
	gauge("pairingd_queue_stats_up", upHelp, 1)
	const deliveries = "Notification deliveries by status: queued (waiting), sending (claimed by a worker), failed (given up). Database-wide."
	gauge("pairingd_notify_deliveries", deliveries, float64(stats.Deliveries.Failed), "status", "failed")
	gauge("pairingd_notify_deliveries", deliveries, float64(stats.Deliveries.Pending), "status", "queued")
	gauge("pairingd_notify_deliveries", deliveries, float64(stats.Deliveries.Running), "status", "sending")
	gauge("pairingd_notify_oldest_pending_age_seconds", "Age of the oldest queued or sending notification delivery; 0 when none is pending.",
		q.ageOf(stats.Deliveries.OldestPending))
	const site = "Site events by delivery state: pending (not delivered yet), failed (given up). Database-wide."
	gauge("pairingd_site_events", site, float64(stats.SiteEvents.Failed), "state", "failed")
	gauge("pairingd_site_events", site, float64(stats.SiteEvents.Unfinished()), "state", "pending")
	gauge("pairingd_inbound_events_pending", "Platform webhook events stored and not handled yet. Database-wide.", float64(stats.Inbound.Unfinished()))
	const jobs = "Jobs of each durable queue by state: pending (waiting for a try), running (claimed by a worker), failed (given up). Database-wide."
	const oldest = "Age of each durable queue's oldest pending or running job; 0 when none is."
	for _, j := range []struct {
		name string
		s    pairing.QueueStat
	}{{pairing.QueueInbound, stats.Inbound}, {pairing.QueueNotify, stats.Deliveries}, {pairing.QueueSiteEvents, stats.SiteEvents}} {
		gauge("pairingd_queue_jobs", jobs, float64(j.s.Failed), "queue", j.name, "state", "failed")
		gauge("pairingd_queue_jobs", jobs, float64(j.s.Pending), "queue", j.name, "state", "pending")
		gauge("pairingd_queue_jobs", jobs, float64(j.s.Running), "queue", j.name, "state", "running")
		gauge("pairingd_queue_oldest_pending_age_seconds", oldest, q.ageOf(j.s.OldestPending), "queue", j.name)
	}
}

// ageOf is the seconds since t at the scrape; 0 for the zero time.
func (q queueCollector) ageOf(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(0, q.now.Sub(t).Seconds())
}
