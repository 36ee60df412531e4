-- Sign in with your messenger: the OpenID Connect provider's state, all in
-- the database so any instance answers any step of a sign-in. Secrets
-- (client secrets, codes, access token ids, sign-in tokens, session ids,
-- browser bindings) are stored as their SHA-256 only; signing keys are
-- private keys in PKCS#8 DER. Times are unix microseconds (0 = not set).
CREATE TABLE oidc_clients (
  id                 TEXT    PRIMARY KEY,
  name               TEXT    NOT NULL,
  secret_hash        BLOB,
  redirect_uris      TEXT    NOT NULL,
  initiate_login_uri TEXT    NOT NULL DEFAULT '',
  public             INTEGER NOT NULL DEFAULT 0,
  created_at         INTEGER NOT NULL,
  revoked_at         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE oidc_auth_requests (
  id              TEXT    PRIMARY KEY,
  client_id       TEXT    NOT NULL,
  request         TEXT    NOT NULL,
  browser_hash    BLOB,
  match_code      TEXT    NOT NULL DEFAULT '',
  status          TEXT    NOT NULL DEFAULT 'pending',
  person_id       INTEGER NOT NULL DEFAULT 0,
  subject         TEXT    NOT NULL DEFAULT '',
  amr             TEXT    NOT NULL DEFAULT '',
  auth_time       INTEGER NOT NULL DEFAULT 0,
  code_hash       BLOB    UNIQUE,
  code_used_at    INTEGER NOT NULL DEFAULT 0,
  expires_at      INTEGER NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE INDEX oidc_auth_requests_expires ON oidc_auth_requests (expires_at);
CREATE TABLE signin_tokens (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  hash       BLOB    NOT NULL UNIQUE,
  request_id TEXT    NOT NULL,
  channel    TEXT    NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER NOT NULL DEFAULT 0,
  lead_id    INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX signin_tokens_expires ON signin_tokens (expires_at);
CREATE TABLE oidc_tokens (
  hash       BLOB    PRIMARY KEY,
  request_id TEXT    NOT NULL,
  client_id  TEXT    NOT NULL,
  subject    TEXT    NOT NULL,
  scopes     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX oidc_tokens_request ON oidc_tokens (request_id);
CREATE INDEX oidc_tokens_expires ON oidc_tokens (expires_at);
CREATE TABLE oidc_sessions (
  hash       BLOB    PRIMARY KEY,
  person_id  INTEGER NOT NULL,
  amr        TEXT    NOT NULL,
  auth_time  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX oidc_sessions_person ON oidc_sessions (person_id);
CREATE TABLE oidc_subjects (
  person_id    INTEGER PRIMARY KEY,
  subject      TEXT    NOT NULL UNIQUE,
  signed_in_at INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL
);
CREATE TABLE oidc_signing_keys (
  id          TEXT    PRIMARY KEY,
  algorithm   TEXT    NOT NULL,
  private_key BLOB    NOT NULL,
  created_at  INTEGER NOT NULL,
  retired_at  INTEGER NOT NULL DEFAULT 0
);
