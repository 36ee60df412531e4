package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// Store is what the provider keeps in the database (*store.Store).
type Store interface {
	KeyStore
	OIDCClient(ctx context.Context, id string) (store.OIDCClient, error)
	CreateAuthRequest(ctx context.Context, a store.AuthRequestRecord) error
	AuthRequest(ctx context.Context, id string) (store.AuthRequestRecord, error)
	BindBrowser(ctx context.Context, id string, hash []byte) (bool, error)
	SetAuthCode(ctx context.Context, id string, codeHash []byte, expires time.Time) error
	SpendAuthCodeIssuing(ctx context.Context, codeHash []byte, now, keepUntil time.Time, issue func(store.AuthRequestRecord) (store.AccessTokenRecord, error)) (store.AuthRequestRecord, bool, error)
	CreateAccessToken(ctx context.Context, t store.AccessTokenRecord) error
	AccessToken(ctx context.Context, hash []byte) (store.AccessTokenRecord, error)
	DeleteAccessToken(ctx context.Context, hash []byte) error
	CreateSession(ctx context.Context, s store.SessionRecord) error
	Session(ctx context.Context, hash []byte) (store.SessionRecord, error)
	DeleteSession(ctx context.Context, hash []byte) error
	DeletePersonSessions(ctx context.Context, personID int64, subject string) error
	PersonBySubject(ctx context.Context, subject string) (int64, time.Time, error)
	LeadsOfPerson(ctx context.Context, personID int64) ([]pairing.Lead, error)
	WebUserByPerson(ctx context.Context, personID int64) (pairing.WebUser, error)
	Ping(ctx context.Context) error
}

// storage is op.Storage over Store.
type storage struct {
	st      Store
	cfg     Config
	keys    *keyRing
	claims  *claimer
	clients *clientCache
	now     func() time.Time
	random  func(prefix string) (string, error)
}

var _ op.Storage = (*storage)(nil)

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// errNotFound satisfies op's StorageNotFoundError.
type errNotFound struct{ what string }

func (e errNotFound) Error() string { return e.what + " not found" }
func (errNotFound) IsNotFound()     {}

// CreateAuthRequest stores a validated request. PKCE with S256 is required
// of every client, confidential ones too: it binds the code to the browser
// session that started the sign-in, which a client secret cannot do
// (RFC 9700, 2.1.1), and costs a confidential client one parameter.
func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	if r.ResponseMode != "" && r.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	if !hasWord(r.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	p := params{
		RedirectURI: r.RedirectURI, State: r.State, Nonce: r.Nonce, Scopes: r.Scopes, CodeChallenge: r.CodeChallenge,
		Prompt: r.Prompt, MaxAge: r.MaxAge, LoginHint: r.LoginHint,
	}
	for _, t := range r.UILocales {
		p.UILocales = append(p.UILocales, t.String())
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	id, err := s.random("")
	if err != nil {
		return nil, err
	}
	now := s.now()
	rec := store.AuthRequestRecord{ID: id, ClientID: r.ClientID, Request: body, Status: pairing.SignInPending, ExpiresAt: now.Add(s.cfg.RequestTTL), CreatedAt: now}
	if err := s.st.CreateAuthRequest(ctx, rec); err != nil {
		return nil, err
	}
	return authRequest{rec: rec, p: p}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	rec, err := s.st.AuthRequest(ctx, id)
	if errors.Is(err, pairing.ErrNotFound) {
		return nil, errNotFound{"auth request"}
	}
	if err != nil {
		return nil, err
	}
	return requestOf(rec)
}

// AuthRequestByCode spends the code: one exchange per code. A replay gets
// invalid_grant and revokes what the first exchange issued. The access
// token the exchange answers with is stored in the same transaction as
// the spend (CreateAccessToken then hands it out), so an exchange costs
// one write.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	now := s.now()
	token, err := s.random("")
	if err != nil {
		return nil, err
	}
	var issued authRequest
	issue := func(rec store.AuthRequestRecord) (store.AccessTokenRecord, error) {
		a, err := requestOf(rec)
		if err != nil {
			return store.AccessTokenRecord{}, err
		}
		issued = a
		return store.AccessTokenRecord{Hash: hash(token), RequestID: rec.ID, ClientID: rec.ClientID, Subject: rec.Subject,
			Scopes: a.p.Scopes, ExpiresAt: now.Add(s.cfg.TokenTTL), CreatedAt: now}, nil
	}
	rec, spent, err := s.st.SpendAuthCodeIssuing(ctx, hash(code), now, now.Add(s.cfg.TokenTTL), issue)
	if errors.Is(err, pairing.ErrNotFound) {
		return nil, errNotFound{"code"}
	}
	if err != nil {
		return nil, err
	}
	if !spent || rec.Status != pairing.SignInConfirmed {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was used or has expired")
	}
	if issued.rec.ID != rec.ID {
		return nil, errors.New("oidc: a spent code's access token was not stored")
	}
	issued.accessToken, issued.accessTokenExpiry = token, now.Add(s.cfg.TokenTTL)
	return issued, nil
}

// SaveAuthCode is not used: the sign-in pages make codes themselves (to
// add iss to the response, RFC 9207).
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.st.SetAuthCode(ctx, id, hash(code), s.now().Add(s.cfg.codeLifetime()))
}

// DeleteAuthRequest keeps the spent request until its tokens expire, so a
// replayed code can still revoke them; the prune job deletes it.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	if a, ok := req.(authRequest); ok && a.accessToken != "" {
		return a.accessToken, a.accessTokenExpiry, nil // stored with the code's spend
	}
	id, err := s.random("")
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	rec := store.AccessTokenRecord{Hash: hash(id), Subject: req.GetSubject(), Scopes: req.GetScopes(), ExpiresAt: now.Add(s.cfg.TokenTTL), CreatedAt: now}
	if a, ok := req.(authRequest); ok {
		rec.RequestID, rec.ClientID = a.rec.ID, a.rec.ClientID
	}
	if err := s.st.CreateAccessToken(ctx, rec); err != nil {
		return "", time.Time{}, err
	}
	return id, rec.ExpiresAt, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

// TerminateSession ends the person's sessions and access tokens
// (end-session with an ID token hint).
func (s *storage) TerminateSession(ctx context.Context, subject, _ string) error {
	personID, _, err := s.st.PersonBySubject(ctx, subject)
	if errors.Is(err, pairing.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.st.DeletePersonSessions(ctx, personID, subject)
}

func (s *storage) RevokeToken(ctx context.Context, tokenOrID, subject, clientID string) *oidc.Error {
	rec, err := s.st.AccessToken(ctx, hash(tokenOrID))
	if errors.Is(err, pairing.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError()
	}
	if rec.ClientID != clientID {
		return oidc.ErrInvalidClient()
	}
	if err := s.st.DeleteAccessToken(ctx, rec.Hash); err != nil {
		return oidc.ErrServerError()
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) { return s.keys.current(ctx) }

// SignatureAlgorithms lists the signing algorithm first, then those of
// the other keys still in the JWKS (after a change of
// oidc.signing_algorithm, tokens signed before it still verify with
// relying parties that accept only the algorithms discovery lists).
func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	out := []jose.SignatureAlgorithm{s.keys.alg}
	keys, err := s.keys.keys(ctx, false)
	if err != nil {
		return out, nil
	}
	for _, k := range keys {
		if !slices.Contains(out, k.alg) {
			out = append(out, k.alg)
		}
	}
	return out, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) { return s.keys.public(ctx) }

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.clients.get(ctx, id)
	if errors.Is(err, pairing.ErrNotFound) || err == nil && !c.RevokedAt.IsZero() {
		return nil, errNotFound{"client"}
	}
	if err != nil {
		return nil, err
	}
	return client{c: c, idTTL: s.cfg.TokenTTL}, nil
}

// AuthorizeClientIDSecret compares SHA-256 digests in constant time: the
// secret is 256 random bits, so a fast hash is as strong as a slow one.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.clients.get(ctx, id)
	if err != nil || !c.RevokedAt.IsZero() || c.Public || subtle.ConstantTimeCompare(c.SecretHash, hash(secret)) != 1 {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims: profile, messengers
// and site_user_id.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, u *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var known int64
	if a, ok := req.(authRequest); ok && a.rec.Subject == req.GetSubject() {
		known = a.rec.PersonID
	}
	return s.claims.fill(ctx, u, req.GetSubject(), known, scopes, true)
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, u *oidc.UserInfo, tokenID, subject, _ string) error {
	rec, err := s.st.AccessToken(ctx, hash(tokenID))
	if err != nil || rec.Subject != subject || !rec.ExpiresAt.After(s.now()) {
		return oidc.ErrInvalidRequest().WithDescription("access token invalid or expired")
	}
	return s.claims.fill(ctx, u, subject, 0, rec.Scopes, true)
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return oidc.ErrUnauthorizedClient()
}

// GetPrivateClaimsFromScopes feeds JWT access tokens, which are not issued.
func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, subject, _ string, _ []string) (map[string]any, error) {
	return s.claims.private(ctx, subject)
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound{"key"}
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnauthorizedClient()
}

func (s *storage) Health(ctx context.Context) error { return s.st.Ping(ctx) }
