-- Telegram polling stores its updates in inbound_events like every
-- webhook, so that table's unique (source, key) is the one dedupe; the
-- separate processed_updates marks are no longer written or read.
DROP INDEX IF EXISTS processed_updates_seen;
DROP TABLE IF EXISTS processed_updates;
