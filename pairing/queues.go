package pairing

import "time"

// QueueStats is the state of the durable queues at one moment, for
// monitoring (GET /metrics): one QueueStat per queue of the job engine.
// The numbers are database-wide, so every instance sharing a database
// reports the same ones.
type QueueStats struct {
	Deliveries QueueStat // notification deliveries
	SiteEvents QueueStat // site events to the site's webhook
	Inbound    QueueStat // platform webhook events
}

// QueueStat is one queue's gauges.
type QueueStat struct {
	// Pending jobs wait for their first or next try; Running ones are
	// claimed by a worker (until another claims them again, when a crashed
	// worker's lease ran out).
	Pending int64
	Running int64
	// Failed jobs were given up; they are kept until pruned.
	Failed int64
	// OldestPending is when the oldest pending or running job was
	// written; zero when none is.
	OldestPending time.Time
}

// Unfinished is every job not yet done nor given up.
func (q QueueStat) Unfinished() int64 { return q.Pending + q.Running }
