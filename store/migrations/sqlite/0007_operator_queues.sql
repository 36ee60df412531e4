-- What operators watch and retry (GET /metrics queue gauges, pairingd
-- messages/events failed|retry). Times are unix microseconds (0 = not set).

-- When an operator put a failed delivery back in the queue: its max age
-- (notify.max_age) counts from then instead of from the message's
-- acceptance, so a retry after a long outage is not expired at once.
ALTER TABLE outbox_deliveries ADD COLUMN requeued_at INTEGER NOT NULL DEFAULT 0;

-- The age of the oldest pending delivery, read at every scrape: only
-- queued and sending rows are in the index, so MIN(created_at) is one
-- index step however many delivered rows the table keeps.
CREATE INDEX outbox_deliveries_pending_created ON outbox_deliveries (created_at) WHERE status IN ('queued', 'sending');

-- Given-up site events, counted at every scrape and listed by
-- `pairingd events failed`: site_events keeps every event for
-- site.events_retention, so without this they are a full scan.
CREATE INDEX site_events_failed ON site_events (failed_at) WHERE failed_at <> 0;
