-- Telegram polling stores its updates in inbound_events like every
-- webhook, so that table's unique (source, key) is the one dedupe and the
-- separate processed_updates marks go.
--
-- An update the previous release handled just before the upgrade may be
-- polled again after it (Telegram redelivers until the offset moves on).
-- The marks of the last 48 hours (the previous release's dedupe window)
-- become inbound rows that are already done, with an empty payload, so
-- that redelivery inserts nothing. The polling source and key are the
-- ones the marks used: "telegram:" + channel name, and the decimal
-- update_id. A row already in inbound_events (webhook mode) is kept.
-- created_at is the mark's time, so the rows age out with the others.
INSERT OR IGNORE INTO inbound_events (source, event_key, grp, payload, attempts, done_at, created_at)
SELECT source, update_key, '', X'', 1, seen_at, seen_at
FROM processed_updates
WHERE source LIKE 'telegram:%'
  AND seen_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 48 * 3600) * 1000000;
DROP INDEX IF EXISTS processed_updates_seen;
DROP TABLE IF EXISTS processed_updates;
