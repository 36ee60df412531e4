-- pairingd schema, SQLite. Times are unix microseconds (0 = not set).
CREATE TABLE settings (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
);

CREATE TABLE persons (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at INTEGER NOT NULL
);

CREATE TABLE leads (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  person_id   INTEGER NOT NULL REFERENCES persons(id),
  channel     TEXT    NOT NULL,
  external_id TEXT    NOT NULL,
  first_name  TEXT    NOT NULL DEFAULT '',
  last_name   TEXT    NOT NULL DEFAULT '',
  username    TEXT    NOT NULL DEFAULT '',
  locale      TEXT    NOT NULL DEFAULT '',
  blocked     BOOLEAN NOT NULL DEFAULT FALSE,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  UNIQUE (channel, external_id)
);
CREATE INDEX leads_person ON leads (person_id);

CREATE TABLE web_users (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  person_id        INTEGER NOT NULL UNIQUE REFERENCES persons(id) ON DELETE CASCADE,
  lead_id          INTEGER NOT NULL DEFAULT 0,
  buid_hash        BLOB,
  pin_hash         BLOB,
  pin_issued_at    INTEGER NOT NULL DEFAULT 0,
  pin_expires_at   INTEGER NOT NULL DEFAULT 0,
  pin_used_at      INTEGER NOT NULL DEFAULT 0,
  magic_expires_at INTEGER NOT NULL DEFAULT 0,
  failed_attempts  INTEGER NOT NULL DEFAULT 0,
  locked_until     INTEGER NOT NULL DEFAULT 0,
  user_id          TEXT UNIQUE,
  linked_at        INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);

CREATE TABLE grants (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  hash        BLOB    NOT NULL UNIQUE,
  kind        TEXT    NOT NULL,
  web_user_id INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,
  lead_id     INTEGER NOT NULL DEFAULT 0,
  user_id     TEXT    NOT NULL DEFAULT '',
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL
);
CREATE INDEX grants_web_user ON grants (web_user_id);

CREATE TABLE api_keys (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT    NOT NULL,
  prefix       TEXT    NOT NULL,
  hash         BLOB    NOT NULL UNIQUE,
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER NOT NULL DEFAULT 0,
  failures     INTEGER NOT NULL DEFAULT 0,
  window_start INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE audit_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  action      TEXT    NOT NULL,
  outcome     TEXT    NOT NULL DEFAULT '',
  key_id      INTEGER NOT NULL DEFAULT 0,
  web_user_id INTEGER NOT NULL DEFAULT 0,
  person_id   INTEGER NOT NULL DEFAULT 0,
  user_id     TEXT    NOT NULL DEFAULT '',
  detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE site_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  type       TEXT    NOT NULL,
  user_id    TEXT    NOT NULL DEFAULT '',
  payload    TEXT    NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE processed_updates (
  source     TEXT    NOT NULL,
  update_key TEXT    NOT NULL,
  seen_at    INTEGER NOT NULL,
  PRIMARY KEY (source, update_key)
);
CREATE INDEX processed_updates_seen ON processed_updates (seen_at);
