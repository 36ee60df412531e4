package store

import (
	"context"
	"fmt"

	"github.com/pairingd/pairingd/pairing"
)

// queueStatsSQL reads every queue gauge in one statement, so the numbers
// are one snapshot and a scrape is one round trip. Each part is an index
// range: outbox_deliveries_due (status, ...) for the delivery counts,
// outbox_deliveries_pending_created for the oldest pending delivery,
// site_events_pending and site_events_failed, inbound_events_pending and
// inbound_events_failed. Counting still reads one index entry per row
// counted, so the cost grows with the backlog, never with the history the
// tables keep. %s is SQLite's INDEXED BY for the oldest pending delivery:
// without table statistics its planner prefers outbox_deliveries_due and
// reads every pending row. A site or inbound event is running while a
// worker's lease owner is on it.
const queueStatsSQL = `SELECT
  (SELECT COUNT(*) FROM outbox_deliveries WHERE status = 'queued'),
  (SELECT COUNT(*) FROM outbox_deliveries WHERE status = 'sending'),
  (SELECT COUNT(*) FROM outbox_deliveries WHERE status = 'failed'),
  (SELECT COALESCE(MIN(created_at), 0) FROM outbox_deliveries %s WHERE status IN ('queued', 'sending')),
  (SELECT COUNT(*) FROM site_events WHERE delivered_at = 0 AND failed_at = 0),
  (SELECT COUNT(*) FROM site_events WHERE delivered_at = 0 AND failed_at = 0 AND lease_owner <> ''),
  (SELECT COUNT(*) FROM site_events WHERE failed_at <> 0),
  (SELECT COALESCE(MIN(created_at), 0) FROM site_events WHERE delivered_at = 0 AND failed_at = 0),
  (SELECT COUNT(*) FROM inbound_events WHERE done_at = 0 AND failed_at = 0),
  (SELECT COUNT(*) FROM inbound_events WHERE done_at = 0 AND failed_at = 0 AND lease_owner <> ''),
  (SELECT COUNT(*) FROM inbound_events WHERE failed_at <> 0),
  (SELECT COALESCE(MIN(created_at), 0) FROM inbound_events WHERE done_at = 0 AND failed_at = 0)`

// QueueStats reads the sizes of the durable queues (GET /metrics). It
// runs on the reader pool: on SQLite it never waits for the writer.
func (s *Store) QueueStats(ctx context.Context) (pairing.QueueStats, error) {
	var q pairing.QueueStats
	hint := ""
	if s.driver == SQLite {
		hint = "INDEXED BY outbox_deliveries_pending_created"
	}
	var oldest [3]int64
	d, e, in := &q.Deliveries, &q.SiteEvents, &q.Inbound
	if err := s.queryOne(ctx, s.r, fmt.Sprintf(queueStatsSQL, hint), nil, &d.Pending, &d.Running, &d.Failed, &oldest[0],
		&e.Pending, &e.Running, &e.Failed, &oldest[1],
		&in.Pending, &in.Running, &in.Failed, &oldest[2]); err != nil {
		return pairing.QueueStats{}, err
	}
	// The site and inbound counts above are of every unfinished row.
	e.Pending -= e.Running
	in.Pending -= in.Running
	d.OldestPending, e.OldestPending, in.OldestPending = tm(oldest[0]), tm(oldest[1]), tm(oldest[2])
	return q, nil
}
