-- The job queues report one shape of gauges (pending, running, failed,
-- oldest pending age). Counting the given-up inbound events reads this
-- index, so a scrape costs what has failed, not the table's history.
CREATE INDEX inbound_events_failed ON inbound_events (failed_at) WHERE failed_at <> 0;
