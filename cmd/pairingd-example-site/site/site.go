// Package site is a small website that signs people in with pairingd
// ("Sign in with Telegram") and uses its REST API. Copy from it: it uses
// only a standard OpenID Connect client (github.com/coreos/go-oidc/v3 and
// golang.org/x/oauth2) and net/http, nothing of pairingd's own code.
//
// What it shows:
//
//   - sign-in: Authorization Code with PKCE, state and nonce, the iss
//     check of RFC 9207 (handlers.go: login, callback);
//   - the two answers of a sign-in: the ID token's site_user_id claim names
//     an account of this site (log it in), or it is absent (offer "Create
//     account", then link the new account to the person with
//     POST /v1/links/oidc {sub, user_id});
//   - a sign-in that starts in the chat (bot-first): pairingd sends the
//     person to the client's initiate_login_uri (/login?iss=...&login_hint=...),
//     and the site starts an ordinary sign-in;
//   - "Connect Telegram" for a signed-in account: POST /v1/deep-links gives a
//     link and a QR code;
//   - "Send me a test notification": POST /v1/users/{user_id}/messages;
//   - sign-out, at the site and at pairingd (the end_session_endpoint).
//
// Accounts and sessions live in memory: a real site keeps them in its
// database. The site's own pages set a strict Content-Security-Policy and
// check a CSRF token on every POST.
package site

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

//go:embed pages
var pagesFS embed.FS

// Config is what the site needs to know; the pairingd operator hands out
// the first four (pairingd clients create, pairingd keys create).
type Config struct {
	// Issuer is pairingd's server.public_url.
	Issuer string
	// ClientID and ClientSecret come from `pairingd clients create`.
	ClientID     string
	ClientSecret string
	// APIKey calls pairingd's REST API (`pairingd keys create`).
	APIKey string
	// APIURL is where the REST API answers; default Issuer.
	APIURL string
	// BaseURL is this site's own address, e.g. https://shop.example; the
	// redirect URI is BaseURL + "/callback", registered with pairingd.
	BaseURL string
	// Channel is the pairingd channel "Connect Telegram" links; default
	// "telegram".
	Channel string
	// Name heads the pages; default "Example Shop".
	Name string
	// BotURL is where people find the bot (https://t.me/<bot>), linked
	// from the home page for a sign-in that starts in the chat; optional.
	BotURL string
	// HTTPClient calls pairingd; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Log gets one line per failure worth a look; default slog.Default().
	Log *slog.Logger
}

// Site is the website: an http.Handler.
type Site struct {
	cfg      Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	endSess  string // pairingd's end_session_endpoint, "" when it has none
	api      *apiClient
	pages    *template.Template
	mux      *http.ServeMux
	log      *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session // by session cookie
	pending  map[string]*pending // sign-ins under way, by state
	accounts map[string]*account // by site user id
	nextUser int
}

// session is a browser signed in to this site.
type session struct {
	csrf   string
	sub    string         // the ID token's sub: the person at pairingd
	claims map[string]any // the ID token's claims, shown on the account page
	userID string         // this site's account; "" until created (register)
	flash  string         // one message for the next page
}

// pending is a sign-in between /login and /callback.
type pending struct {
	verifier, nonce string
	created         time.Time
}

// account is this site's user record.
type account struct {
	ID      string
	Name    string
	Created time.Time
}

// New discovers the issuer (GET /.well-known/openid-configuration) and
// builds the site.
func New(ctx context.Context, cfg Config) (*Site, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.BaseURL == "" || cfg.APIKey == "" {
		return nil, errors.New("site: Issuer, ClientID, BaseURL and APIKey are required")
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.APIURL == "" {
		cfg.APIURL = cfg.Issuer
	}
	if cfg.Channel == "" {
		cfg.Channel = "telegram"
	}
	if cfg.Name == "" {
		cfg.Name = "Example Shop"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("site: discovery at %s: %w", cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = provider.Claims(&extra)
	pages, err := template.New("site").Funcs(template.FuncMap{"json": prettyJSON}).ParseFS(pagesFS, "pages/*.html")
	if err != nil {
		return nil, err
	}
	s := &Site{
		cfg:      cfg,
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Endpoint:    provider.Endpoint(),
			RedirectURL: cfg.BaseURL + "/callback",
			// profile: the names; pairingd adds messengers and
			// site_user_id to every ID token.
			Scopes: []string{oidc.ScopeOpenID, "profile"},
		},
		endSess:  extra.EndSession,
		api:      &apiClient{base: strings.TrimSuffix(cfg.APIURL, "/"), key: cfg.APIKey, http: cfg.HTTPClient},
		pages:    pages,
		log:      cfg.Log,
		sessions: map[string]*session{},
		pending:  map[string]*pending{},
		accounts: map[string]*account{},
	}
	s.routes()
	return s, nil
}

// RedirectURIs are the URIs to register with pairingd for this site: the
// callback, and where pairingd sends the browser after sign-out.
func RedirectURIs(baseURL string) []string {
	baseURL = strings.TrimSuffix(baseURL, "/")
	return []string{baseURL + "/callback", baseURL + "/signed-out"}
}

// InitiateLoginURI is where pairingd sends a person who signed in from
// the chat (the client's initiate_login_uri).
func InitiateLoginURI(baseURL string) string { return strings.TrimSuffix(baseURL, "/") + "/login" }

func (s *Site) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.home)
	m.HandleFunc("GET /login", s.login)
	m.HandleFunc("GET /callback", s.callback)
	m.HandleFunc("GET /account", s.accountPage)
	m.HandleFunc("POST /account/create", s.createAccount)
	m.HandleFunc("POST /connect", s.connect)
	m.HandleFunc("POST /notify", s.notify)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("GET /signed-out", s.signedOut)
	m.HandleFunc("GET /style.css", s.style)
	s.mux = m
}

// ServeHTTP answers with the site's security headers on every page.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' "+s.cfg.Issuer+"; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

const sessionCookie = "site_session"

// current is the browser's session, nil when it has none.
func (s *Site) current(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value]
}

// startSession replaces the browser's session (a new id at every sign-in,
// against session fixation).
func (s *Site) startSession(w http.ResponseWriter, r *http.Request, sess *session) {
	s.endSession(w, r)
	id := randomToken()
	sess.csrf = randomToken()
	s.mu.Lock()
	s.sessions[id] = sess
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(s.cfg.BaseURL, "https://")})
}

func (s *Site) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// postSession is the session of a POST whose CSRF token matches.
func (s *Site) postSession(w http.ResponseWriter, r *http.Request) *session {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	sess := s.current(r)
	if sess == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("csrf") != sess.csrf {
		s.render(w, http.StatusForbidden, "error.html", pageData{Site: s.cfg.Name, Error: "This form has expired. Go back, reload the page and try again."})
		return nil
	}
	return sess
}

// pageData is what every page template gets.
type pageData struct {
	Site      string
	BotURL    string
	Session   *sessionView
	Account   *account
	Telegram  *linkView
	Error     string
	Flash     string
	DeepLink  *deepLink
	LoginHint bool
}

// sessionView is a copy of a session for a page, taken under the lock.
type sessionView struct {
	CSRF   string
	Sub    string
	Claims map[string]any
	UserID string
}

func (s *Site) view(sess *session) *sessionView {
	if sess == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &sessionView{CSRF: sess.csrf, Sub: sess.sub, Claims: sess.claims, UserID: sess.userID}
}

func (s *Site) render(w http.ResponseWriter, status int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, name, d); err != nil {
		s.log.Error("page", "page", name, "err", err)
	}
}

func (s *Site) style(w http.ResponseWriter, _ *http.Request) {
	b, _ := pagesFS.ReadFile("pages/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
