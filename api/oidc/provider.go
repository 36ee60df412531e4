package oidc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/pairingd/pairingd/api/webpage"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// Protocol endpoints, under /oidc so they stay apart from the REST API.
const (
	pathAuthorize  = "/oidc/authorize"
	pathToken      = "/oidc/token"
	pathUserinfo   = "/oidc/userinfo"
	pathRevoke     = "/oidc/revoke"
	pathEndSession = "/oidc/end_session"
	pathKeys       = "/oidc/keys"
	pathDiscovery  = "/.well-known/openid-configuration"
	signInPath     = "/signin/"
	assetsPath     = "/signin-assets/"
)

// Channel is one configured channel as the sign-in page offers it.
type Channel struct {
	Name string
	Type string
}

// Deps are what the provider is built from.
type Deps struct {
	Store   Store
	SignIns *pairing.SignIns
	// Channels are offered on the page in this order.
	Channels []Channel
	Texts    *templates.Catalog
	Pages    *template.Template
	Assets   func(name string) ([]byte, error)
	// Secret derives the key that seals access tokens and the CSRF key; at
	// least 32 bytes, the same on every instance.
	Secret []byte
	Clock  pairing.Clock
	Log    *slog.Logger
	// PINPageClients names, per channel, the client (site) its chats sign
	// in to from the hosted PIN page (the channel's pin_page_client).
	PINPageClients map[string]string
	// LoginCheckers check Telegram's login_url data, per channel whose
	// /login message carries the one-tap button.
	LoginCheckers map[string]LoginChecker
	// PINLength is pairing.pin_length, for the PIN field.
	PINLength int
}

// Route is one path the api package mounts. Browser routes (pages and
// authorize) are rate limited per client IP; the back-channel ones (token,
// userinfo, keys) come from a site's servers, many people per address.
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
	Browser bool
}

// Provider is the OpenID Provider with its sign-in pages.
type Provider struct {
	issuer    string
	cfg       Config
	d         Deps
	op        *op.Provider
	csrf      webpage.CSRF
	cookies   webpage.Cookies
	locales   *webpage.Locales
	chanNames []string
}

// New builds the provider for issuer (server.public_url).
func New(issuer string, cfg Config, d Deps) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(d.Secret) < 32 || d.Store == nil || d.SignIns == nil || d.Texts == nil || d.Pages == nil {
		return nil, errors.New("oidc: store, sign-ins, texts, pages and a 32-byte secret are required")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("oidc: server.public_url must be an absolute http(s) URL")
	}
	issuer = strings.TrimSuffix(issuer, "/")
	if d.Clock == nil {
		d.Clock = pairing.SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	secure := u.Scheme == "https"
	p := &Provider{issuer: issuer, cfg: cfg, d: d, csrf: webpage.NewCSRF(derive(d.Secret, "oidc csrf")), cookies: webpage.Cookies{Secure: secure}}
	now := func() time.Time { return d.Clock.Now().UTC() }
	st := &storage{
		st: d.Store, cfg: cfg, now: now, random: randomID,
		keys:    newKeyRing(d.Store, cfg.SigningAlgorithm, cfg.KeyRetention(), now),
		claims:  &claimer{st: d.Store, types: d.SignIns.ChannelType},
		clients: &clientCache{st: d.Store, now: now},
	}
	for _, ch := range d.Channels {
		p.chanNames = append(p.chanNames, ch.Name)
	}
	if p.locales, err = webpage.NewLocales(d.Texts.Locales()); err != nil {
		return nil, err
	}

	var key [32]byte
	copy(key[:], derive(d.Secret, "oidc access tokens"))
	opCfg := &op.Config{
		CryptoKey:          key,
		CodeMethodS256:     true,
		AuthMethodPost:     true,
		SupportedUILocales: p.locales.Tags(),
		SupportedScopes:    []string{oidc.ScopeOpenID, oidc.ScopeProfile},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "name", "given_name",
			"family_name", "preferred_username", "locale", ClaimMessengers, ClaimSiteUserID},
	}
	opts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint(pathAuthorize), op.NewEndpoint(pathToken), op.NewEndpoint(pathUserinfo),
			op.NewEndpoint(pathRevoke), op.NewEndpoint(pathEndSession), op.NewEndpoint(pathKeys)),
		op.WithLogger(d.Log.With("component", "oidc")),
	}
	if !secure {
		opts = append(opts, op.WithAllowInsecure())
	}
	if p.op, err = op.NewOpenIDProvider(issuer, opCfg, st, opts...); err != nil {
		return nil, err
	}
	return p, nil
}

// Routes lists what api mounts. op's own /authorize/callback is left out:
// the sign-in page finishes a request itself (with iss, RFC 9207) and only
// for the browser that started it.
func (p *Provider) Routes() []Route {
	h := p.op.HttpHandler()
	pages := http.HandlerFunc(p.servePage)
	r := []Route{
		{http.MethodGet, pathDiscovery, p.discovery(h), false},
		{http.MethodGet, pathKeys, h, false},
		{http.MethodPost, pathToken, h, false},
		{http.MethodGet, pathUserinfo, h, false},
		{http.MethodPost, pathUserinfo, h, false},
		{http.MethodPost, pathRevoke, h, false},
		{http.MethodGet, pathAuthorize, p.withIssOnErrors(h), true},
		{http.MethodPost, pathAuthorize, p.withIssOnErrors(h), true},
		{http.MethodGet, pathEndSession, p.endSession(h), true},
		{http.MethodPost, pathEndSession, p.endSession(h), true},
		{http.MethodGet, signInPath + "*", p.withIssOnErrors(pages), true},
		{http.MethodPost, signInPath + "*", p.withIssOnErrors(pages), true},
		{http.MethodGet, assetsPath + "*", webpage.Assets(p.d.Assets), true},
	}
	if len(p.d.PINPageClients) > 0 {
		pair := http.HandlerFunc(p.servePair)
		r = append(r,
			Route{http.MethodGet, pairPath, pair, true},
			Route{http.MethodPost, pairPath, pair, true},
			Route{http.MethodPost, pairResendPath, pair, true},
			Route{http.MethodGet, pairOneTapPath + "*", pair, true})
	}
	return r
}

// Handler serves every route without the api package (benchmarks, tests).
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range p.Routes() {
		path := strings.TrimSuffix(r.Path, "*")
		mux.Handle(r.Method+" "+path, r.Handler)
	}
	return mux
}

// endSession also forgets this browser's session cookie.
func (p *Provider) endSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			_ = p.d.Store.DeleteSession(r.Context(), hash(c.Value))
		}
		p.cookies.Clear(w, sessionCookie)
		next.ServeHTTP(w, r)
	})
}

func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// randomID is 256 random bits in base64url: request ids, codes, token ids,
// session cookies.
func randomID(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}
