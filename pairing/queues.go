package pairing

import "time"

// QueueStats is the state of the durable queues at one moment, for
// monitoring (GET /metrics): what waits, and what was given up. The
// numbers are database-wide, so every instance sharing a database reports
// the same ones.
type QueueStats struct {
	// Notification deliveries: queued (waiting for their first or next
	// attempt), sending (claimed by a worker), failed (given up; kept
	// until their message is pruned).
	DeliveriesQueued  int64
	DeliveriesSending int64
	DeliveriesFailed  int64
	// OldestPendingDelivery is when the oldest queued or sending delivery
	// was created; zero when none is pending.
	OldestPendingDelivery time.Time
	// Site events not yet delivered nor given up, and given up (after
	// site.webhook_retry_for, or a 410 from the site).
	SiteEventsPending int64
	SiteEventsFailed  int64
	// InboundPending counts platform webhook events stored and not yet
	// handled nor given up.
	InboundPending int64
}
