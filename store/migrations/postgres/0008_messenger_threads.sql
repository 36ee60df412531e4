-- Who owns each Messenger thread (handover protocol), shared by every
-- instance and kept across restarts. A row exists only while an owner is
-- known: forgetting the owner deletes it. Times are unix microseconds.
CREATE TABLE messenger_threads (
  channel      TEXT    NOT NULL,
  external_id  TEXT    NOT NULL,
  owner_app_id TEXT    NOT NULL,
  updated_at   BIGINT  NOT NULL,
  PRIMARY KEY (channel, external_id)
);
