// Package messenger connects Facebook Pages to pairingd as channels of type
// messenger. One Hub serves every configured Page behind the one webhook
// route /webhooks/messenger: it checks Meta's signature over the raw body,
// turns events into pairing.Service calls and results into messages sent
// with a small Graph API client of its own (no SDK). No pairing rule lives
// here.
package messenger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// Pairing is what the adapter needs of *pairing.Service.
type Pairing interface {
	pairing.Confirmations // deep links (m.me/<page>?ref=<token>): see deeplinks.go
	TouchLead(ctx context.Context, key pairing.LeadKey, p pairing.Profile) (pairing.Lead, error)
	IssuePIN(ctx context.Context, key pairing.LeadKey, p pairing.Profile, opt pairing.IssueOptions) (pairing.IssuedPIN, error)
	Status(ctx context.Context, key pairing.LeadKey) (pairing.LeadStatus, error)
	UnlinkLead(ctx context.Context, key pairing.LeadKey, actor pairing.Actor) (string, error)
	UnlinkByNotice(ctx context.Context, key pairing.LeadKey, token string) (string, error)
	SetBlocked(ctx context.Context, key pairing.LeadKey, blocked bool) error
	LinkLead(ctx context.Context, key pairing.LeadKey, userID string) (pairing.Result, error)
	JoinLeads(ctx context.Context, key pairing.LeadKey, existing pairing.LeadKey) error
}

var _ Pairing = (*pairing.Service)(nil)

// ThreadState remembers the handover protocol's state: which app owns
// each thread (an empty owner means unknown or idle), and each Page's role
// as the last app_roles event gave it ("" when none was received).
type ThreadState interface {
	SetThreadOwner(ctx context.Context, key pairing.LeadKey, appID string) error
	ThreadOwner(ctx context.Context, key pairing.LeadKey) (string, error)
	SetPageRole(ctx context.Context, channel, role string) error
	PageRole(ctx context.Context, channel string) (string, error)
}

// dedupeSource is the source name of Messenger events in the dedupe table.
const dedupeSource = "messenger"

// page is one configured Page and its Graph client.
type page struct {
	cfg   PageConfig
	graph *graphClient

	mu      sync.Mutex
	lastErr error // the last call that says the Page is unhealthy
}

// Hub serves every configured Page: the webhook, the channels, Account
// Linking and ID matching.
type Hub struct {
	pages   []*page
	byName  map[string]*page
	byID    map[string]*page
	svc     Pairing
	threads ThreadState
	inbox   channel.Intake
	texts   *templates.Catalog
	log     *slog.Logger
	clock   pairing.Clock
	obs     pairing.Observer // told of every message sent (send.go)

	redirectHosts []string
	timeout       time.Duration
	// words maps a lower-case chat word to its action.
	words map[string]string

	mu       sync.Mutex
	inbound  map[pairing.LeadKey]time.Time
	profiles map[pairing.LeadKey]cachedProfile
	known    map[pairing.LeadKey]bool
}

// New checks the configuration and builds the Hub; each Page becomes one
// pairing.Channel (Channels).
func New(cfg Config, deps channel.Deps[Pairing]) (*Hub, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	deps, err := deps.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("messenger: %w", err)
	}
	threads := cfg.Threads
	if threads == nil {
		threads = NewMemThreadState()
	}
	h := &Hub{
		byName:        map[string]*page{},
		byID:          map[string]*page{},
		svc:           deps.Service,
		threads:       threads,
		inbox:         deps.Intake,
		texts:         deps.Texts,
		log:           deps.Log.With("channel_type", "messenger"),
		clock:         deps.Clock,
		obs:           deps.Observer,
		redirectHosts: cfg.AllowedRedirectHosts,
		timeout:       cmp.Or(cfg.HandleTimeout, 15*time.Second),
		inbound:       map[pairing.LeadKey]time.Time{},
		profiles:      map[pairing.LeadKey]cachedProfile{},
		known:         map[pairing.LeadKey]bool{},
	}
	if len(h.redirectHosts) == 0 {
		h.redirectHosts = DefaultRedirectHosts
	}
	hc := cmp.Or(cfg.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	for _, pc := range cfg.Pages {
		pc = pc.withDefaults()
		p := &page{cfg: pc}
		p.graph = newGraphClient(pc, hc, p.observe)
		h.pages = append(h.pages, p)
		h.byName[pc.Name] = p
		h.byID[pc.PageID] = p
	}
	h.words = loadWords(deps.Texts)
	h.inbox.Handle(dedupeSource, h.handleInbound)
	return h, nil
}

// Channels returns one pairing.Channel per Page, in config order, for
// pairing.Service's RegisterChannel.
func (h *Hub) Channels() []pairing.Channel {
	out := make([]pairing.Channel, 0, len(h.pages))
	for _, p := range h.pages {
		out = append(out, &pageChannel{h: h, p: p})
	}
	return out
}

// Channel returns the channel of one Page; nil when no Page has that name.
func (h *Hub) Channel(name string) pairing.Channel {
	p, ok := h.byName[name]
	if !ok {
		return nil
	}
	return &pageChannel{h: h, p: p}
}

// Health reports Pages whose last Graph call says they cannot work: the
// API unreachable or the access token refused. Nil when all are fine.
func (h *Hub) Health() error {
	var errs []error
	for _, p := range h.pages {
		errs = append(errs, p.health())
	}
	return errors.Join(errs...)
}

// health is the Page's state for Health.
func (p *page) health() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr == nil {
		return nil
	}
	return fmt.Errorf("messenger page %q: %w", p.cfg.Name, p.lastErr)
}

// Unhealthy states, as Health reports them.
var (
	errGraphDown    = errors.New("Graph API unreachable or failing")
	errTokenRefused = errors.New("page access token or app secret refused by the Graph API (code 190)")
)

// observe records the outcome of a Graph call for Health. Errors about one
// person (blocked, window) say nothing about the Page.
func (p *page) observe(err error) {
	var state error
	var ge *GraphError
	switch {
	case err == nil:
	case errors.As(err, &ge) && (ge.Code == 190 || ge.Code == 102):
		state = errTokenRefused
	case errors.Is(err, ErrUnavailable) && !errors.Is(err, context.Canceled):
		state = errGraphDown
	default:
		return
	}
	p.mu.Lock()
	p.lastErr = state
	p.mu.Unlock()
}

// role is the Page's role in force: the last app_roles event any instance
// recorded, else the configuration's.
func (h *Hub) role(ctx context.Context, p *page) string {
	r, err := h.threads.PageRole(ctx, p.cfg.Name)
	if err != nil {
		h.log.Error("page role", "channel", p.cfg.Name, "err", err)
	}
	if r == "" {
		return p.cfg.Role
	}
	return r
}

// pageChannel is one Page as a pairing.Channel.
type pageChannel struct {
	h *Hub
	p *page
}

var _ pairing.Channel = (*pageChannel)(nil)

// Name is the Page's channel name.
func (c *pageChannel) Name() string { return c.p.cfg.Name }

// Health reports why the Page cannot work now (see Hub.Health).
func (c *pageChannel) Health() error { return c.p.health() }

// SendPIN sends the pairing message to the lead (a resend asked by the
// site). It returns the send error as is: see the Err* sentinels.
func (c *pageChannel) SendPIN(ctx context.Context, pin pairing.IssuedPIN) error {
	key := pin.Lead.Key()
	if key.Channel != c.p.cfg.Name {
		return fmt.Errorf("messenger page %q: lead belongs to channel %q: %w", c.p.cfg.Name, key.Channel, ErrRejected)
	}
	locale := pin.Lead.Profile.Locale
	if locale == "" {
		locale = cmp.Or(c.h.profile(ctx, c.p, key).Locale, c.p.cfg.FallbackLocale)
	}
	return c.h.deliverPIN(ctx, c.p, key, locale, pin)
}
