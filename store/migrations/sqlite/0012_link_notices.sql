-- The unlink buttons of link notices: one token per notice, stored as its
-- SHA-256, bound to the lead it was sent to and the site user of the link
-- it reports. Times are unix microseconds (0 = not set).
CREATE TABLE link_notices (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  hash       BLOB    NOT NULL UNIQUE,
  lead_id    INTEGER NOT NULL,
  user_id    TEXT    NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX link_notices_expires ON link_notices (expires_at);
-- Telegram one-tap sign-ins already used: the SHA-256 of the data's hash,
-- kept until the data is too old to be accepted anyway, so one signed
-- login_url opens one session.
CREATE TABLE one_tap_uses (
  hash       BLOB   PRIMARY KEY,
  expires_at INTEGER  NOT NULL
);
CREATE INDEX one_tap_uses_expires ON one_tap_uses (expires_at);
