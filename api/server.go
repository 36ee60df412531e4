// Package api is pairingd's HTTP face: the REST v1 API the website calls
// (API-key auth), the bot webhooks, health and metrics. Requests are checked
// against openapi.yaml before any handler runs; handlers decode, make one
// pairing.Service call and write JSON; errors.go maps every error to one
// status and stable code.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// Service is what the API needs of *pairing.Service.
type Service interface {
	Authenticate(ctx context.Context, token string) (pairing.APIKey, error)
	Authorize(ctx context.Context, req pairing.AuthorizeRequest) (pairing.Result, error)
	CompleteLink(ctx context.Context, req pairing.LinkRequest) (pairing.Result, error)
	GetLink(ctx context.Context, userID string) (pairing.Link, error)
	UnlinkUser(ctx context.Context, userID string, actor pairing.Actor) (bool, error)
	ResendPIN(ctx context.Context, buid string) (pairing.IssuedPIN, error)
	SiteEvents(ctx context.Context, after int64, limit int) (events []pairing.SiteEvent, next int64, more bool, err error)
	Ready(ctx context.Context) error
	DeepLinkService
	Notify(ctx context.Context, req pairing.NotifyRequest) (pairing.Message, error)
	Message(ctx context.Context, id int64) (pairing.Message, error)
}

var _ Service = (*pairing.Service)(nil)

// MessengerAPI is what the API needs of the Messenger adapter.
type MessengerAPI interface {
	// AccountLinking finishes Messenger Account Linking for a logged-in site
	// user and returns where to send the browser.
	AccountLinking(ctx context.Context, accountLinkingToken, redirectURI, userID string) (redirect string, err error)
	// LinkFacebook links a Facebook Login user (app-scoped id) without a PIN.
	LinkFacebook(ctx context.Context, userID, appScopedID string) (pairing.Result, error)
}

// Webhook is a platform callback mounted without API key, behind the
// per-IP limit. The handler checks the platform's signature itself.
type Webhook struct {
	Method  string
	Path    string
	Handler http.Handler
	// Unlimited skips the per-IP limit: back-channel routes (the OpenID
	// token endpoint) that a site's servers call for many people from one
	// address.
	Unlimited bool
}

// Check is one dependency reported by /readyz. Its error text is logged,
// never shown.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
	// Optional checks are reported in /readyz but do not make it 503: a
	// bot that cannot reach its platform must not take the REST API out of
	// a load balancer.
	Optional bool
}

// Config is the HTTP side's configuration. Zero values take the defaults
// in DefaultConfig.
type Config struct {
	// Listen is the address NewHTTPServer listens on (":8080").
	Listen string
	// BodyLimit bounds a /v1 request body (bytes).
	BodyLimit int64
	// WebhookBodyLimit bounds a webhook body (bytes).
	WebhookBodyLimit int64
	// TrustedProxies are the CIDRs (or single IPs) of reverse proxies whose
	// X-Forwarded-For is believed. Empty: the peer address is the client.
	TrustedProxies []string
	// PublicRatePerSecond and PublicBurst limit each client IP on the
	// webhook routes.
	PublicRatePerSecond float64
	PublicBurst         int
	// AuthFailureRatePerSecond and AuthFailureBurst limit the 401s one
	// client IP may earn; past them /v1 answers 429 without looking at the
	// key, so keys cannot be guessed fast.
	AuthFailureRatePerSecond float64
	AuthFailureBurst         int
	// Server timeouts and header limit, see net/http.Server.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Listen:                   ":8080",
		BodyLimit:                64 << 10,
		WebhookBodyLimit:         1 << 20,
		PublicRatePerSecond:      20,
		PublicBurst:              40,
		AuthFailureRatePerSecond: 0.2,
		AuthFailureBurst:         10,
		ReadHeaderTimeout:        5 * time.Second,
		ReadTimeout:              15 * time.Second,
		WriteTimeout:             30 * time.Second,
		IdleTimeout:              120 * time.Second,
		MaxHeaderBytes:           64 << 10,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	orDefault(&c.BodyLimit, d.BodyLimit)
	orDefault(&c.WebhookBodyLimit, d.WebhookBodyLimit)
	orDefault(&c.PublicRatePerSecond, d.PublicRatePerSecond)
	orDefault(&c.PublicBurst, d.PublicBurst)
	orDefault(&c.AuthFailureRatePerSecond, d.AuthFailureRatePerSecond)
	orDefault(&c.AuthFailureBurst, d.AuthFailureBurst)
	orDefault(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDefault(&c.ReadTimeout, d.ReadTimeout)
	orDefault(&c.WriteTimeout, d.WriteTimeout)
	orDefault(&c.IdleTimeout, d.IdleTimeout)
	orDefault(&c.MaxHeaderBytes, d.MaxHeaderBytes)
	return c
}

// orDefault replaces a zero or negative setting by its default.
func orDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Deps are the API's collaborators.
type Deps struct {
	Service Service
	// Messenger may be nil: its routes then answer 404 not_found.
	Messenger MessengerAPI
	Webhooks  []Webhook
	// Checks are reported by /readyz beside "database" (Service.Ready);
	// a Check named "database" replaces that built-in one.
	Checks []Check
	// Log gets the request log and the detail of internal errors. Nil
	// discards.
	Log *slog.Logger
	// Metrics collects the counters served at /metrics. Nil: New makes one.
	Metrics *Metrics
	// Queues is read at every /metrics scrape for the durable queues'
	// gauges (the store). Nil: no queue gauges.
	Queues QueueStatsReader
	// Clock drives the per-IP limits and retry_after; nil is the wall clock.
	Clock pairing.Clock
	// SubjectLinker serves POST /v1/links/oidc; nil: 404 not_found.
	SubjectLinker SubjectLinker
}

// SubjectLinker links the person of a recently signed-in OpenID subject.
type SubjectLinker interface {
	LinkSubject(ctx context.Context, req pairing.SubjectLinkRequest) (pairing.Result, error)
}

// server holds what the handlers share.
type server struct {
	cfg       Config
	svc       Service
	messenger MessengerAPI
	subjects  SubjectLinker
	checks    []Check
	log       *slog.Logger
	metrics   *Metrics
	queues    QueueStatsReader
	clock     pairing.Clock
	spec      *spec
	// authFailures counts 401s per client IP; public limits webhooks.
	authFailures *ipLimiter
	public       *ipLimiter
	// routes are the registered "METHOD pattern" pairs, so logs and
	// metrics name only known routes.
	routes map[string]bool
}

// New builds the Echo server with every route, ready for NewHTTPServer.
func New(cfg Config, deps Deps) (*echo.Echo, error) {
	cfg = cfg.withDefaults()
	if deps.Service == nil {
		return nil, errors.New("api: Deps.Service is required")
	}
	s := &server{
		cfg:       cfg,
		svc:       deps.Service,
		messenger: deps.Messenger,
		subjects:  deps.SubjectLinker,
		checks:    deps.Checks,
		log:       deps.Log,
		metrics:   deps.Metrics,
		queues:    deps.Queues,
		clock:     deps.Clock,
		routes:    map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if s.clock == nil {
		s.clock = pairing.SystemClock{}
	}
	var err error
	if s.spec, err = loadSpec(); err != nil {
		return nil, err
	}
	s.authFailures = newIPLimiter(cfg.AuthFailureRatePerSecond, cfg.AuthFailureBurst, s.clock.Now)
	s.public = newIPLimiter(cfg.PublicRatePerSecond, cfg.PublicBurst, s.clock.Now)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if e.IPExtractor, err = ipExtractor(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if err := checkWebhooks(deps.Webhooks); err != nil {
		return nil, err
	}
	s.register(e, deps.Webhooks)
	for _, r := range e.Routes() {
		s.routes[r.Method+" "+r.Path] = true
	}
	return e, nil
}

// NewHTTPServer wraps a handler in an http.Server with the configured
// timeouts, so slow clients cannot hold connections open.
func NewHTTPServer(cfg Config, h http.Handler) *http.Server {
	cfg = cfg.withDefaults()
	return &http.Server{
		Addr:              cfg.Listen,
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}
}

// ipExtractor trusts X-Forwarded-For only from the configured proxies.
// Echo's XFF extractor trusts loopback and private ranges by default; that
// is switched off so only the listed ranges count.
func ipExtractor(proxies []string) (echo.IPExtractor, error) {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		if !strings.Contains(p, "/") {
			if ip := net.ParseIP(p); ip != nil && ip.To4() != nil {
				p += "/32"
			} else {
				p += "/128"
			}
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("api: trusted proxy %q: %w", p, err)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

func checkWebhooks(hooks []Webhook) error {
	seen := map[string]bool{}
	for _, w := range hooks {
		switch {
		case w.Handler == nil:
			return fmt.Errorf("api: webhook %s %s has no handler", w.Method, w.Path)
		case w.Method == "" || !strings.HasPrefix(w.Path, "/"):
			return fmt.Errorf("api: webhook %q %q needs a method and an absolute path", w.Method, w.Path)
		case reservedPath(w.Path):
			return fmt.Errorf("api: webhook path %q collides with the API", w.Path)
		case seen[w.Method+" "+w.Path]:
			return fmt.Errorf("api: webhook %s %s mounted twice", w.Method, w.Path)
		}
		seen[w.Method+" "+w.Path] = true
	}
	return nil
}

func reservedPath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/v1":
		return true
	}
	return strings.HasPrefix(p, "/v1/")
}
