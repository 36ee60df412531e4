-- Notifications by site user id: the outbox. A message and its deliveries
-- (one per lead) are written in one transaction; workers claim due
-- deliveries with a lease. Times are unix microseconds (0 = not set).
CREATE TABLE outbox_messages (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id         TEXT    NOT NULL,
  person_id       INTEGER NOT NULL,
  text            TEXT    NOT NULL,
  buttons         TEXT    NOT NULL DEFAULT '[]',
  key_id          INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT,
  request_hash    BLOB,
  created_at      INTEGER NOT NULL,
  UNIQUE (key_id, idempotency_key)
);

CREATE TABLE outbox_deliveries (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id      INTEGER NOT NULL REFERENCES outbox_messages(id) ON DELETE CASCADE,
  lead_id         INTEGER NOT NULL,
  channel         TEXT    NOT NULL,
  external_id     TEXT    NOT NULL,
  status          TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT    NOT NULL DEFAULT '',
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  lease_until     INTEGER NOT NULL DEFAULT 0,
  lease_token     TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  finished_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (status, next_attempt_at);
CREATE INDEX outbox_deliveries_lead ON outbox_deliveries (lead_id, status);
CREATE INDEX outbox_deliveries_message ON outbox_deliveries (message_id);
