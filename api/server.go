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
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
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
	// Unlimited skips the per-IP limit and the upload gate: back-channel
	// routes (the OpenID token endpoint) that a site's servers call for
	// many people from one address; the body limit still holds.
	Unlimited bool
	// Page marks a route a person's browser calls (the OpenID Connect
	// sign-in pages, authorize, their polling): limited per client IP in
	// buckets of its own, apart from the webhooks', and not counted by
	// the upload gate, which bounds unauthenticated webhook bodies.
	Page bool
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

// Config is the HTTP side's configuration (yaml section server). Zero
// values take the defaults in DefaultConfig.
type Config struct {
	// Listen is the address NewHTTPServer listens on.
	Listen string `yaml:"listen"`
	// MetricsListen, when set, is a second address that serves GET
	// /metrics alone; /metrics is then not served on Listen, so the
	// series need not be public. Empty: /metrics is on Listen.
	MetricsListen string `yaml:"metrics_listen"`
	// PublicURL is this service's base URL as the internet sees it; the
	// platforms' webhooks are registered under it. Empty: no webhooks that
	// need registering.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the CIDRs (or single IPs) of reverse proxies whose
	// X-Forwarded-For is believed. Empty: the peer address is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// BodyLimit bounds a /v1 request body (bytes). A webhook body is
	// bounded by webhookBodyLimit.
	BodyLimit int64 `yaml:"body_limit"`
	// ReadHeaderTimeout bounds reading a request's headers (see
	// net/http.Server; the other timeouts are fixed: readTimeout,
	// writeTimeout, idleTimeout); ShutdownTimeout bounds a graceful stop.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// PublicRatePerSecond limits each client IP on the webhook routes and
	// the hosted pages, with a burst of twice as many requests
	// (publicBurstPerRate).
	PublicRatePerSecond float64 `yaml:"public_rate_per_second"`
	// AuthFailureRatePerSecond and AuthFailureBurst limit the 401s one
	// client IP may earn; past them /v1 answers 429 without looking at the
	// key, so keys cannot be guessed fast.
	AuthFailureRatePerSecond float64 `yaml:"auth_failure_rate_per_second"`
	AuthFailureBurst         int     `yaml:"auth_failure_burst"`
	// MaxConnections caps the open connections (0: three quarters of the
	// process's file descriptor limit); MaxConnectionsPerIP caps those of
	// one client address (trusted proxies excepted). Past either, a new
	// connection is closed at once.
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`

	// Tests of this package only: a value above 0 replaces the fixed
	// limit (webhookBodyLimit, maxHeaderBytes) or the derived burst, so a
	// test can reach a limit with a few requests or a small body. No
	// configuration key sets them.
	publicBurst      int
	webhookBodyLimit int64
	maxHeaderBytes   int
}

// The server's fixed limits: values nobody needs to tune, each with its
// reason.
const (
	// readTimeout bounds reading a whole request, body included. The
	// largest body accepted (webhookBodyLimit, 1 MiB) takes well under
	// 15 s on any link a platform or a site uses; longer would only let a
	// client trickling its body hold a connection.
	readTimeout = 15 * time.Second
	// writeTimeout runs from the end of the request's headers (net/http),
	// so it spans reading the body (up to readTimeout), handling and
	// writing the answer: 30 s leaves the handler and the write 15 s
	// beyond the slowest body read.
	writeTimeout = 30 * time.Second
	// idleTimeout closes a keep-alive connection idle this long: 2 minutes
	// outlasts the usual reverse proxies' upstream keep-alive (nginx 60 s),
	// so the proxy, not pairingd, closes an idle connection and never
	// reuses one just closed; shorter than that would cost reconnects,
	// longer only idle sockets under max_connections.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds a request's headers: 64 KiB is far above real
	// headers (cookies, a bearer token) and caps what one connection may
	// make the server hold (net/http's default is 1 MiB).
	maxHeaderBytes = 64 << 10
	// webhookBodyLimit bounds a platform webhook body: 1 MiB is far above
	// a Telegram update or a Messenger batch, and bounds what the upload
	// gate holds per request before the signature is checked.
	webhookBodyLimit = 1 << 20
	// publicBurstPerRate: the per-IP burst on public routes is twice
	// public_rate_per_second (20/s: 40), so a page load or a short burst
	// of webhooks passes while a flood is held to the rate.
	publicBurstPerRate = 2
)

// publicBurstOf is the per-IP burst of the public routes, derived from the
// rate (at least 1).
func (c Config) publicBurstOf() int {
	if c.publicBurst > 0 {
		return c.publicBurst
	}
	return max(1, int(math.Ceil(publicBurstPerRate*c.PublicRatePerSecond)))
}

// webhookBodyLimitOf and maxHeaderBytesOf are the fixed limits, or a
// test's smaller ones.
func (c Config) webhookBodyLimitOf() int64 {
	if c.webhookBodyLimit > 0 {
		return c.webhookBodyLimit
	}
	return webhookBodyLimit
}

func (c Config) maxHeaderBytesOf() int {
	if c.maxHeaderBytes > 0 {
		return c.maxHeaderBytes
	}
	return maxHeaderBytes
}

// DefaultConfig returns the documented defaults: loopback only, so a
// first start exposes nothing.
func DefaultConfig() Config {
	return Config{
		Listen:                   "127.0.0.1:8080",
		BodyLimit:                64 << 10,
		ReadHeaderTimeout:        5 * time.Second,
		ShutdownTimeout:          10 * time.Second,
		PublicRatePerSecond:      20,
		AuthFailureRatePerSecond: 0.2,
		AuthFailureBurst:         10,
		MaxConnectionsPerIP:      256,
	}
}

// Validate checks the configuration once, before anything starts; each
// error names its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port, got %q", c.Listen)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "must be empty or host:port, got %q", c.MetricsListen)
		} else if c.MetricsListen == c.Listen && port != "0" {
			bad("metrics_listen", "must differ from listen (leave it empty to serve /metrics on listen)")
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("public_url", "must be an absolute http(s) URL")
		}
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("trusted_proxies", "%q is not an IP or CIDR", p)
			}
		}
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 16<<20 {
		bad("body_limit", "must be between 1024 and 16777216 bytes")
	}
	if c.ReadHeaderTimeout <= 0 {
		bad("read_header_timeout", "must be a positive duration")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be a positive duration")
	}
	if c.PublicRatePerSecond <= 0 {
		bad("public_rate_per_second", "must be positive")
	}
	if c.AuthFailureRatePerSecond <= 0 || c.AuthFailureBurst < 1 {
		bad("auth_failure_rate_per_second/auth_failure_burst", "must be positive")
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerIP < 1 {
		bad("max_connections/max_connections_per_ip", "must be positive (max_connections 0: derived from the file descriptor limit)")
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	orDefault(&c.BodyLimit, d.BodyLimit)
	orDefault(&c.PublicRatePerSecond, d.PublicRatePerSecond)
	orDefault(&c.AuthFailureRatePerSecond, d.AuthFailureRatePerSecond)
	orDefault(&c.AuthFailureBurst, d.AuthFailureBurst)
	orDefault(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDefault(&c.ShutdownTimeout, d.ShutdownTimeout)
	if c.MaxConnections <= 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	orDefault(&c.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
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
	// Metrics collects the series served at /metrics. Nil: New makes one.
	Metrics *Metrics
	// Build is reported by pairingd_build_info.
	Build BuildInfo
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
	// keys remembers accepted API keys for keyCacheTTL.
	keys *keyCache
	// authFailures counts 401s per client IP; public limits webhooks.
	authFailures *ipLimiter
	public       *ipLimiter
	// pages limits the browser routes of Webhook.Page per client IP.
	pages *ipLimiter
	// uploads bounds webhook bodies being read before their signature
	// is checked.
	uploads *uploadGate
	// ready is the last readiness answer, reused for readyFor.
	ready readyAnswer
	// routes are the registered "METHOD pattern" pairs, so logs and
	// metrics name only known routes.
	routes map[string]bool
}

// New builds the Echo server with every route, ready for NewHTTPServer.
// With server.metrics_listen set it has no /metrics: use NewHandlers.
func New(cfg Config, deps Deps) (*echo.Echo, error) {
	h, err := NewHandlers(cfg, deps)
	return h.API, err
}

// Handlers are what the listeners serve: API on server.listen, and Metrics
// on server.metrics_listen (nil when that is not set and /metrics is one
// of the API's routes).
type Handlers struct {
	API, Metrics *echo.Echo
}

// NewHandlers builds the Echo servers of the configuration, ready for
// NewHTTPServer.
func NewHandlers(cfg Config, deps Deps) (Handlers, error) {
	cfg = cfg.withDefaults()
	if deps.Service == nil {
		return Handlers{}, errors.New("api: Deps.Service is required")
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
	s.metrics.setBuild(deps.Build)
	if s.clock == nil {
		s.clock = pairing.SystemClock{}
	}
	var err error
	if s.spec, err = loadSpec(); err != nil {
		return Handlers{}, err
	}
	s.keys = newKeyCache(s.clock.Now, keyCacheTTL)
	s.authFailures = newIPLimiter(cfg.AuthFailureRatePerSecond, cfg.AuthFailureBurst, s.clock.Now)
	s.public = newIPLimiter(cfg.PublicRatePerSecond, cfg.publicBurstOf(), s.clock.Now)
	s.pages = newIPLimiter(cfg.PublicRatePerSecond, cfg.publicBurstOf(), s.clock.Now)
	s.uploads = newUploadGate(uploadsPerIP, uploadsBudget, cfg.webhookBodyLimitOf())

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if e.IPExtractor, err = ipExtractor(cfg.TrustedProxies); err != nil {
		return Handlers{}, err
	}
	if err := checkWebhooks(deps.Webhooks); err != nil {
		return Handlers{}, err
	}
	s.register(e, deps.Webhooks)
	h := Handlers{API: e}
	if cfg.MetricsListen != "" {
		h.Metrics = echo.New()
		h.Metrics.HideBanner, h.Metrics.HidePort = true, true
		h.Metrics.HTTPErrorHandler = s.handleError
		h.Metrics.IPExtractor = echo.ExtractIPDirect()
		s.registerMetrics(h.Metrics)
	}
	for _, srv := range []*echo.Echo{h.API, h.Metrics} {
		if srv == nil {
			continue
		}
		for _, r := range srv.Routes() {
			s.routes[r.Method+" "+r.Path] = true
		}
	}
	return h, nil
}

// Listen opens cfg.Listen for srv, with the connection caps of cfg.
func Listen(cfg Config, srv *http.Server) (net.Listener, error) {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	limited, err := limitConnections(ln, srv, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return limited, nil
}

// NewHTTPServer wraps a handler in an http.Server with the configured
// and the fixed timeouts, so slow clients cannot hold connections open.
func NewHTTPServer(cfg Config, h http.Handler) *http.Server {
	cfg = cfg.withDefaults()
	return &http.Server{
		Addr:              cfg.Listen,
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytesOf(),
	}
}

// ipExtractor trusts X-Forwarded-For only from the configured proxies.
// Echo's XFF extractor trusts loopback and private ranges by default; that
// is switched off so only the listed ranges count.
func ipExtractor(proxies []string) (echo.IPExtractor, error) {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	nets, err := parseProxies(proxies)
	if err != nil {
		return nil, err
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range nets {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

// parseProxies reads the trusted proxies: CIDRs, or single addresses.
func parseProxies(proxies []string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, p := range proxies {
		if !strings.Contains(p, "/") {
			// One host. An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is
			// that IPv4 host, as the server sees its connections; read as
			// IPv6 with a /32 it would have been the range ::/32.
			a, err := netip.ParseAddr(p)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("api: trusted proxy %q: not an IP address or CIDR", p)
			}
			a = a.Unmap()
			nets = append(nets, &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())})
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("api: trusted proxy %q: %w", p, err)
		}
		nets = append(nets, n)
	}
	return nets, nil
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
