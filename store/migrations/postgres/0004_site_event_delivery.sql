-- site_events becomes the outbox of the webhook to the site. An event is
-- pending while delivered_at = 0 and failed_at = 0 (failed_at: given up
-- after the retry window, or the site answered 410). A dispatcher claims
-- a pending event by setting lease_owner/lease_until; attempts counts the
-- claims. Times are unix microseconds, 0 for "not set".
ALTER TABLE site_events ADD COLUMN attempts        BIGINT NOT NULL DEFAULT 0;
ALTER TABLE site_events ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE site_events ADD COLUMN lease_owner     TEXT NOT NULL DEFAULT '';
ALTER TABLE site_events ADD COLUMN lease_until     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE site_events ADD COLUMN delivered_at    BIGINT NOT NULL DEFAULT 0;
ALTER TABLE site_events ADD COLUMN failed_at       BIGINT NOT NULL DEFAULT 0;
ALTER TABLE site_events ADD COLUMN last_error      TEXT NOT NULL DEFAULT '';

-- The claim scans pending events in id order, and checks for an earlier
-- pending event of the same user (delivery in order per user).
CREATE INDEX site_events_pending ON site_events (id) WHERE delivered_at = 0 AND failed_at = 0;
CREATE INDEX site_events_user_pending ON site_events (user_id, id) WHERE delivered_at = 0 AND failed_at = 0;
-- Retention pruning.
CREATE INDEX site_events_created ON site_events (created_at);
