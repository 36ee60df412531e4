-- Deep-link tokens for site-initiated pairing (POST /v1/deep-links). Only
-- the SHA-256 of a token is stored. Times are unix microseconds (0 = not set).
CREATE TABLE link_tokens (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  hash         BLOB    NOT NULL UNIQUE,
  channel      TEXT    NOT NULL,
  user_id      TEXT    NOT NULL,
  display_name TEXT    NOT NULL DEFAULT '',
  key_id       INTEGER NOT NULL DEFAULT 0,
  expires_at   INTEGER NOT NULL,
  used_at      INTEGER NOT NULL DEFAULT 0,
  lead_id      INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL
);
CREATE INDEX link_tokens_expires ON link_tokens (expires_at);
