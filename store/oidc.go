package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pairingd/pairingd/pairing"
)

// The OpenID Provider's protocol state (migration 0012): registered
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
	ID               string `gorm:"column:id;primaryKey"`
	Name             string `gorm:"column:name"`
	SecretHash       []byte `gorm:"column:secret_hash"`
	RedirectURIs     string `gorm:"column:redirect_uris"`
	InitiateLoginURI string `gorm:"column:initiate_login_uri"`
	Public           bool   `gorm:"column:public"`
	CreatedAt        int64  `gorm:"column:created_at;autoCreateTime:false"`
	RevokedAt        int64  `gorm:"column:revoked_at"`
}

func (clientRow) TableName() string { return "oidc_clients" }

func (c clientRow) client() OIDCClient {
	var uris []string
	_ = json.Unmarshal([]byte(c.RedirectURIs), &uris)
	return OIDCClient{
		ID: c.ID, Name: c.Name, SecretHash: c.SecretHash, RedirectURIs: uris, InitiateLoginURI: c.InitiateLoginURI,
		Public: c.Public, CreatedAt: tm(c.CreatedAt), RevokedAt: tm(c.RevokedAt),
	}
}

type authRequestRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	ClientID    string `gorm:"column:client_id"`
	Request     string `gorm:"column:request"`
	BrowserHash []byte `gorm:"column:browser_hash"`
	MatchCode   string `gorm:"column:match_code"`
	Status      string `gorm:"column:status"`
	PersonID    int64  `gorm:"column:person_id"`
	Subject     string `gorm:"column:subject"`
	AMR         string `gorm:"column:amr"`
	AuthTime    int64  `gorm:"column:auth_time"`
	CodeHash    []byte `gorm:"column:code_hash"`
	CodeUsedAt  int64  `gorm:"column:code_used_at"`
	ExpiresAt   int64  `gorm:"column:expires_at"`
	CreatedAt   int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (authRequestRow) TableName() string { return "oidc_auth_requests" }

func (a authRequestRow) record() AuthRequestRecord {
	return AuthRequestRecord{
		ID: a.ID, ClientID: a.ClientID, Request: []byte(a.Request), BrowserHash: a.BrowserHash,
		Status: pairing.SignInStatus(a.Status), PersonID: a.PersonID, Subject: a.Subject, AMR: splitWords(a.AMR),
		AuthTime: tm(a.AuthTime), CodeUsedAt: tm(a.CodeUsedAt), ExpiresAt: tm(a.ExpiresAt), CreatedAt: tm(a.CreatedAt),
	}
}

type accessTokenRow struct {
	Hash      []byte `gorm:"column:hash;primaryKey"`
	RequestID string `gorm:"column:request_id"`
	ClientID  string `gorm:"column:client_id"`
	Subject   string `gorm:"column:subject"`
	Scopes    string `gorm:"column:scopes"`
	ExpiresAt int64  `gorm:"column:expires_at"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (accessTokenRow) TableName() string { return "oidc_tokens" }

type sessionRow struct {
	Hash      []byte `gorm:"column:hash;primaryKey"`
	PersonID  int64  `gorm:"column:person_id"`
	AMR       string `gorm:"column:amr"`
	AuthTime  int64  `gorm:"column:auth_time"`
	ExpiresAt int64  `gorm:"column:expires_at"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (sessionRow) TableName() string { return "oidc_sessions" }

type signingKeyRow struct {
	ID         string `gorm:"column:id;primaryKey"`
	Algorithm  string `gorm:"column:algorithm"`
	PrivateKey []byte `gorm:"column:private_key"`
	CreatedAt  int64  `gorm:"column:created_at;autoCreateTime:false"`
	RetiredAt  int64  `gorm:"column:retired_at"`
}

func (signingKeyRow) TableName() string { return "oidc_signing_keys" }

// CreateOIDCClient stores a new client.
func (r repo) CreateOIDCClient(ctx context.Context, c OIDCClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return err
	}
	row := clientRow{
		ID: c.ID, Name: c.Name, SecretHash: c.SecretHash, RedirectURIs: string(uris), InitiateLoginURI: c.InitiateLoginURI,
		Public: c.Public, CreatedAt: us(c.CreatedAt),
	}
	return translate(r.w.WithContext(ctx).Create(&row).Error)
}

// OIDCClient finds a client, revoked or not.
func (r repo) OIDCClient(ctx context.Context, id string) (OIDCClient, error) {
	var row clientRow
	if err := take(ctx, r.r, &row, "id = ?", id); err != nil {
		return OIDCClient{}, err
	}
	return row.client(), nil
}

// ListOIDCClients lists every client, oldest first.
func (r repo) ListOIDCClients(ctx context.Context) ([]OIDCClient, error) {
	var rows []clientRow
	if err := r.r.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]OIDCClient, len(rows))
	for i, row := range rows {
		out[i] = row.client()
	}
	return out, nil
}

// RevokeOIDCClient revokes a client and the access tokens issued to it;
// ErrNotFound when no active client has that id.
func (r repo) RevokeOIDCClient(ctx context.Context, id string, now time.Time) error {
	return translate(r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE oidc_clients SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, us(now), id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return pairing.ErrNotFound
		}
		return tx.Exec(`DELETE FROM oidc_tokens WHERE client_id = ?`, id).Error
	}))
}

// CreateAuthRequest stores a new authorization request.
func (r repo) CreateAuthRequest(ctx context.Context, a AuthRequestRecord) error {
	row := authRequestRow{
		ID: a.ID, ClientID: a.ClientID, Request: string(a.Request), Status: string(pairing.SignInPending),
		ExpiresAt: us(a.ExpiresAt), CreatedAt: us(a.CreatedAt),
	}
	return translate(r.w.WithContext(ctx).Omit("code_hash", "browser_hash").Create(&row).Error)
}

// AuthRequest finds an authorization request by id.
func (r repo) AuthRequest(ctx context.Context, id string) (AuthRequestRecord, error) {
	var row authRequestRow
	if err := take(ctx, r.r, &row, "id = ?", id); err != nil {
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
	var row authRequestRow
	if err := take(ctx, r.w, &row, "id = ?", id); err != nil {
		return false, err
	}
	return string(row.BrowserHash) == string(hash), nil
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
func (r repo) SpendAuthCode(ctx context.Context, codeHash []byte, now, keepUntil time.Time) (AuthRequestRecord, bool, error) {
	n, err := r.exec(ctx, `UPDATE oidc_auth_requests SET code_used_at = ?, expires_at = ? WHERE code_hash = ? AND code_used_at = 0 AND expires_at > ?`,
		us(now), us(keepUntil), codeHash, us(now))
	if err != nil {
		return AuthRequestRecord{}, false, err
	}
	var row authRequestRow
	if err := take(ctx, r.w, &row, "code_hash = ?", codeHash); err != nil {
		return AuthRequestRecord{}, false, err
	}
	if n == 1 {
		return row.record(), true, nil
	}
	if row.CodeUsedAt != 0 {
		if _, err := r.exec(ctx, `DELETE FROM oidc_tokens WHERE request_id = ?`, row.ID); err != nil {
			return AuthRequestRecord{}, false, err
		}
	}
	return row.record(), false, nil
}

// CreateAccessToken stores an issued access token.
func (r repo) CreateAccessToken(ctx context.Context, t AccessTokenRecord) error {
	row := accessTokenRow{
		Hash: t.Hash, RequestID: t.RequestID, ClientID: t.ClientID, Subject: t.Subject,
		Scopes: strings.Join(t.Scopes, " "), ExpiresAt: us(t.ExpiresAt), CreatedAt: us(t.CreatedAt),
	}
	return translate(r.w.WithContext(ctx).Create(&row).Error)
}

// AccessToken finds an access token by the hash of its id.
func (r repo) AccessToken(ctx context.Context, hash []byte) (AccessTokenRecord, error) {
	var row accessTokenRow
	if err := take(ctx, r.r, &row, "hash = ?", hash); err != nil {
		return AccessTokenRecord{}, err
	}
	return AccessTokenRecord{
		Hash: row.Hash, RequestID: row.RequestID, ClientID: row.ClientID, Subject: row.Subject,
		Scopes: splitWords(row.Scopes), ExpiresAt: tm(row.ExpiresAt), CreatedAt: tm(row.CreatedAt),
	}, nil
}

// DeleteAccessToken revokes one access token.
func (r repo) DeleteAccessToken(ctx context.Context, hash []byte) error {
	_, err := r.exec(ctx, `DELETE FROM oidc_tokens WHERE hash = ?`, hash)
	return err
}

// CreateSession stores a browser session.
func (r repo) CreateSession(ctx context.Context, s SessionRecord) error {
	row := sessionRow{
		Hash: s.Hash, PersonID: s.PersonID, AMR: strings.Join(s.AMR, " "), AuthTime: us(s.AuthTime),
		ExpiresAt: us(s.ExpiresAt), CreatedAt: us(s.CreatedAt),
	}
	return translate(r.w.WithContext(ctx).Create(&row).Error)
}

// Session finds a session by the hash of its cookie.
func (r repo) Session(ctx context.Context, hash []byte) (SessionRecord, error) {
	var row sessionRow
	if err := take(ctx, r.r, &row, "hash = ?", hash); err != nil {
		return SessionRecord{}, err
	}
	return SessionRecord{
		Hash: row.Hash, PersonID: row.PersonID, AMR: splitWords(row.AMR), AuthTime: tm(row.AuthTime),
		ExpiresAt: tm(row.ExpiresAt), CreatedAt: tm(row.CreatedAt),
	}, nil
}

// DeleteSession ends one browser session.
func (r repo) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := r.exec(ctx, `DELETE FROM oidc_sessions WHERE hash = ?`, hash)
	return err
}

// DeletePersonSessions ends every session and access token of a person
// (end-session with an ID token hint).
func (r repo) DeletePersonSessions(ctx context.Context, personID int64, subject string) error {
	return translate(r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM oidc_sessions WHERE person_id = ?`, personID).Error; err != nil {
			return err
		}
		return tx.Exec(`DELETE FROM oidc_tokens WHERE subject = ?`, subject).Error
	}))
}

// SigningKeys lists the keys in use or retired after since, newest first.
func (r repo) SigningKeys(ctx context.Context, since time.Time) ([]SigningKeyRecord, error) {
	var rows []signingKeyRow
	if err := r.r.WithContext(ctx).Where("retired_at = 0 OR retired_at > ?", us(since)).Order("created_at DESC, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]SigningKeyRecord, len(rows))
	for i, k := range rows {
		out[i] = SigningKeyRecord{ID: k.ID, Algorithm: k.Algorithm, PrivateKey: k.PrivateKey, CreatedAt: tm(k.CreatedAt), RetiredAt: tm(k.RetiredAt)}
	}
	return out, nil
}

// AddSigningKey stores a new key; with retire, every other key in use is
// retired at the key's creation time in the same transaction (rotation).
func (r repo) AddSigningKey(ctx context.Context, k SigningKeyRecord, retire bool) error {
	return translate(r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if retire {
			if err := tx.Exec(`UPDATE oidc_signing_keys SET retired_at = ? WHERE retired_at = 0`, us(k.CreatedAt)).Error; err != nil {
				return err
			}
		}
		row := signingKeyRow{ID: k.ID, Algorithm: k.Algorithm, PrivateKey: k.PrivateKey, CreatedAt: us(k.CreatedAt)}
		return tx.Create(&row).Error
	}))
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
