package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// The OpenID Provider's protocol state (migration 0011): registered
// clients, authorization requests with their code, access tokens, browser
// sessions and signing keys. Every bearer secret is stored as its SHA-256.

// OIDCClient is a registered relying party.
type OIDCClient struct {
	ID               string
	Name             string
	SecretHash       []byte // nil for a public client
	RedirectURIs     []string
	InitiateLoginURI string
	Public           bool
	CreatedAt        time.Time
	RevokedAt        time.Time
}

// AuthRequestRecord is an authorization request as stored. Request is the
// provider's own encoding of the validated parameters.
type AuthRequestRecord struct {
	ID          string
	ClientID    string
	Request     []byte
	BrowserHash []byte
	Status      pairing.SignInStatus
	PersonID    int64
	Subject     string
	AMR         []string
	AuthTime    time.Time
	CodeUsedAt  time.Time
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// AccessTokenRecord is an issued access token; Hash is the SHA-256 of its id.
type AccessTokenRecord struct {
	Hash      []byte
	RequestID string
	ClientID  string
	Subject   string
	Scopes    []string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// SessionRecord is a browser session; Hash is the SHA-256 of the cookie.
type SessionRecord struct {
	Hash      []byte
	PersonID  int64
	AMR       []string
	AuthTime  time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
}

// SigningKeyRecord is one ID token signing key.
type SigningKeyRecord struct {
	ID         string
	Algorithm  string
	PrivateKey []byte // PKCS#8 DER
	CreatedAt  time.Time
	RetiredAt  time.Time // zero for the key in use
}

type clientRow struct {
	ID               string `db:"id"`
	Name             string `db:"name"`
	SecretHash       []byte `db:"secret_hash"`
	RedirectURIs     string `db:"redirect_uris"`
	InitiateLoginURI string `db:"initiate_login_uri"`
	Public           bool   `db:"public"`
	CreatedAt        int64  `db:"created_at"`
	RevokedAt        int64  `db:"revoked_at"`
}

func (c clientRow) client() OIDCClient {
	var uris []string
	_ = json.Unmarshal([]byte(c.RedirectURIs), &uris)
	return OIDCClient{
		ID: c.ID, Name: c.Name, SecretHash: c.SecretHash, RedirectURIs: uris, InitiateLoginURI: c.InitiateLoginURI,
		Public: c.Public, CreatedAt: tm(c.CreatedAt), RevokedAt: tm(c.RevokedAt),
	}
}

type authRequestRow struct {
	ID          string `db:"id"`
	ClientID    string `db:"client_id"`
	Request     string `db:"request"`
	BrowserHash []byte `db:"browser_hash"`
	MatchCode   string `db:"match_code"`
	Status      string `db:"status"`
	PersonID    int64  `db:"person_id"`
	Subject     string `db:"subject"`
	AMR         string `db:"amr"`
	AuthTime    int64  `db:"auth_time"`
	CodeHash    []byte `db:"code_hash"`
	CodeUsedAt  int64  `db:"code_used_at"`
	ExpiresAt   int64  `db:"expires_at"`
	CreatedAt   int64  `db:"created_at"`
}

func (a authRequestRow) record() AuthRequestRecord {
	return AuthRequestRecord{
		ID: a.ID, ClientID: a.ClientID, Request: []byte(a.Request), BrowserHash: a.BrowserHash,
		Status: pairing.SignInStatus(a.Status), PersonID: a.PersonID, Subject: a.Subject, AMR: splitWords(a.AMR),
		AuthTime: tm(a.AuthTime), CodeUsedAt: tm(a.CodeUsedAt), ExpiresAt: tm(a.ExpiresAt), CreatedAt: tm(a.CreatedAt),
	}
}

type accessTokenRow struct {
	Hash      []byte `db:"hash"`
	RequestID string `db:"request_id"`
	ClientID  string `db:"client_id"`
	Subject   string `db:"subject"`
	Scopes    string `db:"scopes"`
	ExpiresAt int64  `db:"expires_at"`
	CreatedAt int64  `db:"created_at"`
}

type sessionRow struct {
	Hash      []byte `db:"hash"`
	PersonID  int64  `db:"person_id"`
	AMR       string `db:"amr"`
	AuthTime  int64  `db:"auth_time"`
	ExpiresAt int64  `db:"expires_at"`
	CreatedAt int64  `db:"created_at"`
}

type signingKeyRow struct {
	ID         string `db:"id"`
	Algorithm  string `db:"algorithm"`
	PrivateKey []byte `db:"private_key"`
	CreatedAt  int64  `db:"created_at"`
	RetiredAt  int64  `db:"retired_at"`
}

// CreateOIDCClient stores a new client.
func (r repo) CreateOIDCClient(ctx context.Context, c OIDCClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return err
	}
	_, err = r.exec(ctx, `INSERT INTO oidc_clients (id, name, secret_hash, redirect_uris, initiate_login_uri, public, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Name, c.SecretHash, string(uris), c.InitiateLoginURI, c.Public, us(c.CreatedAt))
	return err
}

// OIDCClient finds a client, revoked or not.
func (r repo) OIDCClient(ctx context.Context, id string) (OIDCClient, error) {
	return getConverted(ctx, r, r.r, clientRow.client, `SELECT `+columnsOf[clientRow]("")+` FROM oidc_clients WHERE id = ?`, id)
}

// ListOIDCClients lists every client, oldest first.
func (r repo) ListOIDCClients(ctx context.Context) ([]OIDCClient, error) {
	rows, err := listRows[clientRow](ctx, r, r.r, `SELECT `+columnsOf[clientRow]("")+` FROM oidc_clients ORDER BY created_at, id`)
	return converted(rows, err, clientRow.client)
}

// RevokeOIDCClient revokes a client and the access tokens issued to it;
// ErrNotFound when no active client has that id.
func (r repo) RevokeOIDCClient(ctx context.Context, id string, now time.Time) error {
	return r.atomic(ctx, func(tx repo) error {
		n, err := tx.exec(ctx, `UPDATE oidc_clients SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, us(now), id)
		if err != nil {
			return err
		}
		if n != 1 {
			return pairing.ErrNotFound
		}
		_, err = tx.exec(ctx, `DELETE FROM oidc_tokens WHERE client_id = ?`, id)
		return err
	})
}

// CreateAuthRequest stores a new authorization request.
func (r repo) CreateAuthRequest(ctx context.Context, a AuthRequestRecord) error {
	_, err := r.exec(ctx, `INSERT INTO oidc_auth_requests (id, client_id, request, status, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, a.ID, a.ClientID, string(a.Request), string(pairing.SignInPending), us(a.ExpiresAt), us(a.CreatedAt))
	return err
}

// authRequestBy reads the request whose column (id or code_hash) is v.
func (r repo) authRequestBy(ctx context.Context, db conn, column string, v any) (authRequestRow, error) {
	return getRow[authRequestRow](ctx, r, db, `SELECT `+columnsOf[authRequestRow]("")+` FROM oidc_auth_requests WHERE `+column+` = ?`, v)
}

// AuthRequest finds an authorization request by id.
func (r repo) AuthRequest(ctx context.Context, id string) (AuthRequestRecord, error) {
	row, err := r.authRequestBy(ctx, r.r, "id", id)
	if err != nil {
		return AuthRequestRecord{}, err
	}
	return row.record(), nil
}

// BindBrowser ties a request to the browser that first showed its page;
// it reports whether hash is (now) the request's binding.
func (r repo) BindBrowser(ctx context.Context, id string, hash []byte) (bool, error) {
	if _, err := r.exec(ctx, `UPDATE oidc_auth_requests SET browser_hash = ? WHERE id = ? AND browser_hash IS NULL`, hash, id); err != nil {
		return false, err
	}
	var bound []byte
	if err := r.queryOne(ctx, r.w, `SELECT browser_hash FROM oidc_auth_requests WHERE id = ?`, []any{id}, &bound); err != nil {
		return false, err
	}
	return string(bound) == string(hash), nil
}

// SetAuthCode gives a confirmed request its code (hashed) and shortens
// the request's life to the code's.
func (r repo) SetAuthCode(ctx context.Context, id string, codeHash []byte, expires time.Time) error {
	n, err := r.exec(ctx, `UPDATE oidc_auth_requests SET code_hash = ?, expires_at = ? WHERE id = ? AND status = 'confirmed' AND code_hash IS NULL`,
		codeHash, us(expires), id)
	if err == nil && n != 1 {
		return pairing.ErrTokenUsed
	}
	return err
}

// SpendAuthCode spends a code with one conditional UPDATE: of concurrent
// exchanges exactly one gets spent=true. A code already spent is a
// replay: the tokens issued for it are deleted (RFC 9700, 4.4) and the
// request comes back with spent=false. A spent request is kept until
// keepUntil (when its tokens expire) so a replay can still revoke them.
func (s *Store) SpendAuthCode(ctx context.Context, codeHash []byte, now, keepUntil time.Time) (AuthRequestRecord, bool, error) {
	return s.SpendAuthCodeIssuing(ctx, codeHash, now, keepUntil, nil)
}

// SpendAuthCodeIssuing is SpendAuthCode that also stores the access
// token the exchange will answer with, when the code is spent now and its
// request is confirmed: issue makes it from the request (nil: none). One
// write transaction per exchange instead of two, and on SQLite it joins
// the group commit of the other writes (Store.Tx).
func (s *Store) SpendAuthCodeIssuing(ctx context.Context, codeHash []byte, now, keepUntil time.Time, issue func(AuthRequestRecord) (AccessTokenRecord, error)) (AuthRequestRecord, bool, error) {
	var rec AuthRequestRecord
	var spent bool
	err := s.Tx(ctx, func(pr pairing.Repo) error {
		tx := pr.(repo)
		n, err := tx.exec(ctx, `UPDATE oidc_auth_requests SET code_used_at = ?, expires_at = ? WHERE code_hash = ? AND code_used_at = 0 AND expires_at > ?`,
			us(now), us(keepUntil), codeHash, us(now))
		if err != nil {
			return err
		}
		row, err := tx.authRequestBy(ctx, tx.w, "code_hash", codeHash)
		if err != nil {
			return err
		}
		rec, spent = row.record(), n == 1
		switch {
		case spent && issue != nil && rec.Status == pairing.SignInConfirmed:
			t, err := issue(rec)
			if err != nil {
				return err
			}
			return tx.CreateAccessToken(ctx, t)
		case !spent && row.CodeUsedAt != 0:
			_, err := tx.exec(ctx, `DELETE FROM oidc_tokens WHERE request_id = ?`, row.ID)
			return err
		}
		return nil
	})
	if err != nil {
		return AuthRequestRecord{}, false, err
	}
	return rec, spent, nil
}

// CreateAccessToken stores an issued access token.
func (r repo) CreateAccessToken(ctx context.Context, t AccessTokenRecord) error {
	_, err := r.exec(ctx, `INSERT INTO oidc_tokens (hash, request_id, client_id, subject, scopes, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.RequestID, t.ClientID, t.Subject, strings.Join(t.Scopes, " "), us(t.ExpiresAt), us(t.CreatedAt))
	return err
}

// AccessToken finds an access token by the hash of its id.
func (r repo) AccessToken(ctx context.Context, hash []byte) (AccessTokenRecord, error) {
	return getConverted(ctx, r, r.r, func(row accessTokenRow) AccessTokenRecord {
		return AccessTokenRecord{
			Hash: row.Hash, RequestID: row.RequestID, ClientID: row.ClientID, Subject: row.Subject,
			Scopes: splitWords(row.Scopes), ExpiresAt: tm(row.ExpiresAt), CreatedAt: tm(row.CreatedAt),
		}
	}, `SELECT `+columnsOf[accessTokenRow]("")+` FROM oidc_tokens WHERE hash = ?`, hash)
}

// DeleteAccessToken revokes one access token.
func (r repo) DeleteAccessToken(ctx context.Context, hash []byte) error {
	_, err := r.exec(ctx, `DELETE FROM oidc_tokens WHERE hash = ?`, hash)
	return err
}

// CreateSession stores a browser session.
func (r repo) CreateSession(ctx context.Context, s SessionRecord) error {
	_, err := r.exec(ctx, `INSERT INTO oidc_sessions (hash, person_id, amr, auth_time, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.Hash, s.PersonID, strings.Join(s.AMR, " "), us(s.AuthTime), us(s.ExpiresAt), us(s.CreatedAt))
	return err
}

// Session finds a session by the hash of its cookie.
func (r repo) Session(ctx context.Context, hash []byte) (SessionRecord, error) {
	return getConverted(ctx, r, r.r, func(row sessionRow) SessionRecord {
		return SessionRecord{
			Hash: row.Hash, PersonID: row.PersonID, AMR: splitWords(row.AMR), AuthTime: tm(row.AuthTime),
			ExpiresAt: tm(row.ExpiresAt), CreatedAt: tm(row.CreatedAt),
		}
	}, `SELECT `+columnsOf[sessionRow]("")+` FROM oidc_sessions WHERE hash = ?`, hash)
}

// DeleteSession ends one browser session.
func (r repo) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := r.exec(ctx, `DELETE FROM oidc_sessions WHERE hash = ?`, hash)
	return err
}

// DeletePersonSessions ends every session and access token of a person
// (end-session with an ID token hint).
func (r repo) DeletePersonSessions(ctx context.Context, personID int64, subject string) error {
	return r.atomic(ctx, func(tx repo) error {
		if _, err := tx.exec(ctx, `DELETE FROM oidc_sessions WHERE person_id = ?`, personID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `DELETE FROM oidc_tokens WHERE subject = ?`, subject)
		return err
	})
}

// SigningKeys lists the keys in use or retired after since, newest first.
func (r repo) SigningKeys(ctx context.Context, since time.Time) ([]SigningKeyRecord, error) {
	rows, err := listRows[signingKeyRow](ctx, r, r.r, `SELECT `+columnsOf[signingKeyRow]("")+` FROM oidc_signing_keys
		WHERE retired_at = 0 OR retired_at > ? ORDER BY created_at DESC, id`, us(since))
	return converted(rows, err, func(k signingKeyRow) SigningKeyRecord {
		return SigningKeyRecord{ID: k.ID, Algorithm: k.Algorithm, PrivateKey: k.PrivateKey, CreatedAt: tm(k.CreatedAt), RetiredAt: tm(k.RetiredAt)}
	})
}

// AddSigningKey stores a new key; with retire, every other key in use is
// retired at the key's creation time in the same transaction (rotation).
func (r repo) AddSigningKey(ctx context.Context, k SigningKeyRecord, retire bool) error {
	return r.atomic(ctx, func(tx repo) error {
		if retire {
			if _, err := tx.exec(ctx, `UPDATE oidc_signing_keys SET retired_at = ? WHERE retired_at = 0`, us(k.CreatedAt)); err != nil {
				return err
			}
		}
		_, err := tx.exec(ctx, `INSERT INTO oidc_signing_keys (id, algorithm, private_key, created_at) VALUES (?, ?, ?, ?)`,
			k.ID, k.Algorithm, k.PrivateKey, us(k.CreatedAt))
		return err
	})
}

// PruneSignIn deletes expired requests, chat tokens, access tokens and
// sessions, and keys retired before keysBefore.
func (r repo) PruneSignIn(ctx context.Context, now, keysBefore time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM oidc_auth_requests WHERE expires_at <= ?`,
		`DELETE FROM signin_tokens WHERE expires_at <= ?`,
		`DELETE FROM oidc_tokens WHERE expires_at <= ?`,
		`DELETE FROM oidc_sessions WHERE expires_at <= ?`,
	} {
		n, err := r.exec(ctx, q, us(now))
		if err != nil {
			return total, err
		}
		total += n
	}
	n, err := r.exec(ctx, `DELETE FROM oidc_signing_keys WHERE retired_at > 0 AND retired_at <= ?`, us(keysBefore))
	return total + n, err
}
