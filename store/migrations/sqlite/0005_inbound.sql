-- The inbound queue: one row per platform event a webhook accepted
-- (Messenger, Telegram in webhook mode). UNIQUE (source, event_key) is the
-- dedupe: a platform's retry of an event inserts nothing. A worker claims
-- a pending row (done_at = 0 AND failed_at = 0) by setting
-- lease_owner/lease_until; attempts counts the claims; grp orders the
-- events of one person. Times are unix microseconds, 0 for "not set".
CREATE TABLE inbound_events (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  source          TEXT    NOT NULL,
  event_key       TEXT    NOT NULL,
  grp             TEXT    NOT NULL DEFAULT '',
  payload         BLOB    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  lease_owner     TEXT    NOT NULL DEFAULT '',
  lease_until     INTEGER NOT NULL DEFAULT 0,
  done_at         INTEGER NOT NULL DEFAULT 0,
  failed_at       INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  UNIQUE (source, event_key)
);
-- The claim scans pending rows in id order and checks for an earlier
-- pending row of the same group.
CREATE INDEX inbound_events_pending ON inbound_events (id) WHERE done_at = 0 AND failed_at = 0;
CREATE INDEX inbound_events_group_pending ON inbound_events (source, grp, id) WHERE done_at = 0 AND failed_at = 0;
-- Retention pruning.
CREATE INDEX inbound_events_created ON inbound_events (created_at);
