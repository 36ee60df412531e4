-- The Messenger handover protocol's state, shared by every instance and
-- kept across restarts. Times are unix microseconds.

-- Who owns each thread. A row exists only while an owner is known:
-- forgetting the owner deletes it.
CREATE TABLE messenger_threads (
  channel      TEXT    NOT NULL,
  external_id  TEXT    NOT NULL,
  owner_app_id TEXT    NOT NULL,
  updated_at   BIGINT  NOT NULL,
  PRIMARY KEY (channel, external_id)
);

-- Each Page's role as the last app_roles event gave it (it overrides the
-- configuration's role).
CREATE TABLE messenger_pages (
  channel    TEXT    NOT NULL PRIMARY KEY,
  role       TEXT    NOT NULL,
  updated_at BIGINT  NOT NULL
);
