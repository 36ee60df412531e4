package messenger

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// DefaultGraphURL is the Graph API version the adapter was written against.
const DefaultGraphURL = "https://graph.facebook.com/v21.0"

// Page roles in the handover protocol.
const (
	RolePrimary   = "primary"
	RoleSecondary = "secondary"
)

// DefaultMessageTag is the tag used for messages outside the 24-hour
// window: a PIN or a link change is an update to the person's account.
const DefaultMessageTag = "ACCOUNT_UPDATE"

// DefaultRedirectHosts are the hosts Meta uses for the Account Linking
// redirect_uri.
var DefaultRedirectHosts = []string{"facebook.com", "www.facebook.com", "m.facebook.com", "messenger.com", "www.messenger.com"}

// PageConfig is one Facebook Page connected as a channel of type messenger
// (one item of the channels list).
type PageConfig struct {
	// Name is the channel name used in lead records, routes and the CLI.
	Name string `yaml:"name"`
	// PageID is the Page's numeric id, as in webhook entry[].id.
	PageID          string `yaml:"page_id"`
	PageAccessToken string `yaml:"page_access_token"`
	AppID           string `yaml:"app_id"`
	// AppSecret keys the webhook signature, appsecret_proof and the
	// Account Linking authorization codes.
	AppSecret   string `yaml:"app_secret"`
	VerifyToken string `yaml:"verify_token"`
	// GraphURL defaults to DefaultGraphURL; tests point it at fbfake.
	GraphURL string `yaml:"graph_url"`
	// Role is RolePrimary (default) or RoleSecondary in the handover
	// protocol.
	Role string `yaml:"role"`
	// TargetAppID is where a secondary app passes the thread after a
	// pairing exchange; empty: it keeps the thread.
	TargetAppID string `yaml:"target_app_id"`
	// MessageTag is used outside the 24-hour window (default
	// ACCOUNT_UPDATE).
	MessageTag string `yaml:"message_tag"`
	// LoginURL is the site's login page for the Account Linking button;
	// empty: no Log In button.
	LoginURL string `yaml:"login_url"`
	// IDMatching joins this Page's new leads to the same person's leads on
	// the other configured Pages (ids_for_pages).
	IDMatching bool `yaml:"id_matching"`
	// Pace is how fast notifications go out through the Page; zero: as
	// fast as the outbox worker sends.
	Pace pairing.Pace `yaml:",inline"`
	// Options are the keys every channel type has (pin_page_client,
	// link_notices).
	channel.Options `yaml:",inline"`
	// FallbackLocale is the text locale when the person's is unknown;
	// empty: the catalog's fallback. Set by the service (templates).
	FallbackLocale string `yaml:"-"`
}

// DefaultPageConfig returns the documented defaults of a channel's keys.
func DefaultPageConfig() PageConfig {
	return PageConfig{
		GraphURL:   DefaultGraphURL,
		Role:       RolePrimary,
		MessageTag: DefaultMessageTag,
		Pace:       pairing.Pace{RatePerSecond: DefaultRatePerSecond, PerChatInterval: DefaultPerChatInterval},
		Options:    channel.DefaultOptions(),
	}
}

// Validate checks a page's configuration before anything starts; each
// error names its key, never a secret's value.
func (p PageConfig) Validate() error { return p.withDefaults().validate() }

// Config is the Messenger adapter's configuration: every Page it serves.
type Config struct {
	Pages []PageConfig
	// AllowedRedirectHosts are the hosts allowed in an Account Linking
	// redirect_uri (exact host names, or host:port). Empty: the
	// DefaultRedirectHosts. A non-empty list replaces the defaults.
	AllowedRedirectHosts []string
	// Threads keeps the handover protocol's state (the store); nil: in
	// memory, for one instance.
	Threads ThreadState

	// Optional settings; zero values take the defaults.

	// HTTPClient calls the Graph API; default: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// HandleTimeout bounds the handling of one stored webhook event by
	// the inbound worker (the webhook itself answers at once). Default
	// 15 s.
	HandleTimeout time.Duration
}

var (
	numericID = regexp.MustCompile(`^[0-9]{1,32}$`)
	// appIDPattern is an app id usable as a JSON number.
	appIDPattern = regexp.MustCompile(`^[1-9][0-9]{0,31}$`)
	tagName      = regexp.MustCompile(`^[A-Z][A-Z_]{0,63}$`)
)

// withDefaults fills the zero values of a page.
func (p PageConfig) withDefaults() PageConfig {
	p.GraphURL = strings.TrimRight(cmp.Or(p.GraphURL, DefaultGraphURL), "/")
	p.Role = cmp.Or(p.Role, RolePrimary)
	p.MessageTag = cmp.Or(p.MessageTag, DefaultMessageTag)
	return p
}

// validate checks one page (defaults applied). Messages name the field,
// never a secret's value.
func (p PageConfig) validate() error {
	var errs []error
	bad := func(field, reason string) {
		errs = append(errs, fmt.Errorf("%s %s", field, reason))
	}
	if err := pairing.ValidateChannelName(p.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if !numericID.MatchString(p.PageID) {
		bad("page_id", "must be the numeric Page id")
	}
	if p.PageAccessToken == "" {
		bad("page_access_token", "is required")
	}
	if p.AppSecret == "" {
		bad("app_secret", "is required")
	}
	if p.VerifyToken == "" {
		bad("verify_token", "is required")
	}
	if p.AppID != "" && !appIDPattern.MatchString(p.AppID) {
		bad("app_id", "must be numeric")
	}
	if u, err := url.Parse(p.GraphURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		bad("graph_url", "must be an http(s) URL without query")
	}
	switch p.Role {
	case RolePrimary:
	case RoleSecondary:
		if p.AppID == "" {
			bad("app_id", "is required for role secondary (to know whether the app owns a thread)")
		}
	default:
		bad("role", "must be primary or secondary")
	}
	if p.TargetAppID != "" && !appIDPattern.MatchString(p.TargetAppID) {
		bad("target_app_id", "must be numeric")
	}
	if !tagName.MatchString(p.MessageTag) {
		bad("message_tag", "must be a Messenger message tag such as ACCOUNT_UPDATE")
	}
	if p.LoginURL != "" {
		if u, err := url.Parse(p.LoginURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("login_url", "must be an absolute http(s) URL")
		}
	}
	if p.Pace.RatePerSecond < 0 || p.Pace.PerChatInterval < 0 {
		bad("rate_per_second/per_chat_interval", "must not be negative (0: no pace)")
	}
	return errors.Join(errs...)
}

// validate checks the whole configuration.
func (c Config) validate() error {
	if len(c.Pages) == 0 {
		return errors.New("messenger: no pages configured")
	}
	var errs []error
	names, ids := map[string]bool{}, map[string]bool{}
	for _, p := range c.Pages {
		p = p.withDefaults()
		if err := p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("messenger page %q: %w", p.Name, err))
		}
		if names[p.Name] {
			errs = append(errs, fmt.Errorf("messenger page %q: name is used twice", p.Name))
		}
		if ids[p.PageID] {
			errs = append(errs, fmt.Errorf("messenger page %q: page_id is used by another page", p.Name))
		}
		names[p.Name], ids[p.PageID] = true, true
	}
	for _, h := range c.AllowedRedirectHosts {
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			errs = append(errs, fmt.Errorf("messenger: allowed redirect host %q is not a host name", h))
		}
	}
	if c.HandleTimeout < 0 || c.HandleTimeout > 19*time.Second {
		errs = append(errs, errors.New("messenger: handle timeout must be under Meta's 20 s"))
	}
	return errors.Join(errs...)
}
