package telegram

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// Modes: how updates reach the bot.
const (
	// ModePolling asks Telegram for updates with getUpdates (long polling).
	// One process per bot token: Telegram refuses a second poller.
	ModePolling = "polling"
	// ModeWebhook registers PublicURL + WebhookPath(name) with setWebhook;
	// Telegram posts updates there. Any number of instances.
	ModeWebhook = "webhook"
)

// Status displays: what /status says about a linked chat.
const (
	// StatusLinked says only "linked" or "not linked".
	StatusLinked = "linked"
	// StatusUserID also shows the site user id the chat is linked to.
	StatusUserID = "user_id"
)

// DefaultDeepLinkBase is Telegram's: https://t.me/<bot>?start=<token>.
const DefaultDeepLinkBase = "https://t.me/"

// DefaultPollTimeout is the long-poll timeout of getUpdates.
const DefaultPollTimeout = 30 * time.Second

// Config is one Telegram bot connected as a channel of type telegram (one
// item of the channels list).
type Config struct {
	// Name is the channel name used in lead records, routes and the CLI.
	Name string `yaml:"name"`
	// Token is the bot token from @BotFather. It never appears in a log
	// line or an error.
	Token string `yaml:"token"`
	// Mode is ModePolling (default) or ModeWebhook.
	Mode string `yaml:"mode"`
	// APIEndpoint is the Bot API server: a format string with two %s (token,
	// method), default tgbotapi.APIEndpoint, or a base URL such as
	// "http://localhost:8081" (a local Bot API server), to which
	// "/bot%s/%s" is added.
	APIEndpoint string `yaml:"api_endpoint"`
	// WebhookSecret is the secret_token Telegram sends back in the
	// X-Telegram-Bot-Api-Secret-Token header: 1-256 of A-Z a-z 0-9 _ -.
	// Empty: one is derived from the token, so that every instance of the
	// service serving the same bot agrees on it without configuration.
	WebhookSecret string `yaml:"webhook_secret"`
	// PollTimeout is the getUpdates long-poll timeout, 1s..100s.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// StatusDisplay is StatusLinked (default) or StatusUserID.
	StatusDisplay string `yaml:"status_display"`
	// DeepLinkBase is where the bot's links point: DeepLinkBase + bot
	// username + "?start=<token>". Default DefaultDeepLinkBase; pairingd
	// demo points it at its stand-in's web chat.
	DeepLinkBase string `yaml:"deep_link_base"`
	// Pace is how fast notifications go out through the bot; zero: as fast
	// as the outbox worker sends.
	Pace pairing.Pace `yaml:",inline"`
	// Options are the keys every channel type has (pin_page_client,
	// link_notices).
	channel.Options `yaml:",inline"`
	// OneTap puts Telegram's login_url button ("Sign in with one tap") in
	// the /login message. Set it once the bot's domain is set to
	// server.public_url's host with BotFather's /setdomain (Telegram
	// refuses the message otherwise); it also needs pin_page_client and
	// oidc.enabled.
	OneTap bool `yaml:"one_tap"`

	// Set by the service, not by the channel's configuration.

	// PublicURL is the service's public base URL (server.public_url); the
	// webhook is PublicURL + WebhookPath(Name). Required in webhook mode.
	PublicURL string `yaml:"-"`
	// OneTapURL is where the login_url button leads (the hosted page's
	// Telegram route); empty: no button. Set by the service when OneTap
	// holds and the sign-in pages are mounted.
	OneTapURL string `yaml:"-"`
	// OneTapOff says why the button is left out, for one log line; empty
	// when there is a button or nobody asked for one.
	OneTapOff string `yaml:"-"`
	// FallbackLocale is the text locale for people whose language is not
	// shipped; empty: the catalog's fallback.
	FallbackLocale string `yaml:"-"`
	// HTTPClient calls the Bot API. Its Timeout, if set, must exceed
	// PollTimeout. Default: a client with its own transport and a timeout
	// of PollTimeout + 20s.
	HTTPClient *http.Client `yaml:"-"`
	// HandleTimeout bounds the handling of one update; default 15s.
	HandleTimeout time.Duration `yaml:"-"`
}

// DefaultConfig returns the documented defaults of a channel's keys.
func DefaultConfig() Config {
	return Config{
		Mode:          ModePolling,
		PollTimeout:   DefaultPollTimeout,
		StatusDisplay: StatusLinked,
		DeepLinkBase:  DefaultDeepLinkBase,
		Pace:          pairing.Pace{RatePerSecond: DefaultRatePerSecond, PerChatInterval: DefaultPerChatInterval},
		Options:       channel.DefaultOptions(),
	}
}

// Validate checks a channel's configuration before anything starts; each
// error names its key, never the token's or the secret's value.
func (c Config) Validate() error { return c.withDefaults(nil).validate(nil) }

// WebhookPath is the route serving the webhook of the channel name.
func WebhookPath(name string) string { return "/webhooks/telegram/" + name }

var (
	// tokenPattern is what BotFather hands out: the bot id, a colon, and
	// the secret part. Checked so a token can never break the URL.
	tokenPattern  = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{1,200}$`)
	secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
)

// withDefaults fills the zero values.
func (c Config) withDefaults(texts *templates.Catalog) Config {
	c.Mode = cmp.Or(c.Mode, ModePolling)
	if c.APIEndpoint == "" {
		c.APIEndpoint = tgbotapi.APIEndpoint
	} else if !strings.Contains(c.APIEndpoint, "%") {
		c.APIEndpoint = strings.TrimRight(c.APIEndpoint, "/") + "/bot%s/%s"
	}
	c.PollTimeout = cmp.Or(c.PollTimeout, DefaultPollTimeout)
	c.StatusDisplay = cmp.Or(c.StatusDisplay, StatusLinked)
	c.DeepLinkBase = cmp.Or(c.DeepLinkBase, DefaultDeepLinkBase)
	if texts != nil {
		if c.FallbackLocale == "" {
			c.FallbackLocale = texts.Locales()[0]
		} else if loc, ok := matchLocale(texts, c.FallbackLocale); ok {
			c.FallbackLocale = loc
		}
	}
	c.HandleTimeout = cmp.Or(c.HandleTimeout, 15*time.Second)
	return c
}

// validate checks a configuration with defaults applied. Messages name the
// field, never the token's or the secret's value.
func (c Config) validate(texts *templates.Catalog) error {
	var errs []error
	bad := func(field, reason string) {
		errs = append(errs, fmt.Errorf("%s %s", field, reason))
	}
	if err := pairing.ValidateChannelName(c.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if c.Token == "" {
		bad("token", "is required (from @BotFather)")
	} else if !tokenPattern.MatchString(c.Token) {
		bad("token", "does not look like a bot token (digits, a colon, then letters, digits, _ or -)")
	}
	switch c.Mode {
	case ModePolling:
	case ModeWebhook:
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("mode", "webhook mode needs server.public_url, the service's absolute http(s) base URL")
		}
	default:
		bad("mode", "must be polling or webhook")
	}
	if strings.Count(c.APIEndpoint, "%s") != 2 || strings.Count(c.APIEndpoint, "%") != 2 {
		bad("api_endpoint", `must be a base URL or a format with two %s (token, method), like "https://api.telegram.org/bot%s/%s"`)
	} else if u, err := url.Parse(fmt.Sprintf(c.APIEndpoint, "0:x", "getMe")); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("api_endpoint", "must be an absolute http(s) URL")
	}
	if c.WebhookSecret != "" && !secretPattern.MatchString(c.WebhookSecret) {
		bad("webhook_secret", "must be 1..256 of A-Z a-z 0-9 _ -")
	}
	if c.PollTimeout < time.Second || c.PollTimeout > 100*time.Second {
		bad("poll_timeout", "must be between 1s and 100s")
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout != 0 && c.HTTPClient.Timeout <= c.PollTimeout+5*time.Second {
		bad("http client timeout", "must exceed the poll timeout by more than 5s")
	}
	switch c.StatusDisplay {
	case StatusLinked, StatusUserID:
	default:
		bad("status_display", "must be linked or user_id")
	}
	if u, err := url.Parse(c.DeepLinkBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		!strings.HasSuffix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
		bad("deep_link_base", `must be an absolute http(s) URL ending in "/" without a query, like "https://t.me/"`)
	}
	if texts != nil && !slices.Contains(texts.Locales(), c.FallbackLocale) {
		bad("fallback locale", fmt.Sprintf("%q has no texts (shipped: %s)", c.FallbackLocale, strings.Join(texts.Locales(), ", ")))
	}
	if c.HandleTimeout < 0 {
		bad("handle timeout", "must not be negative")
	}
	if c.Pace.RatePerSecond < 0 || c.Pace.PerChatInterval < 0 {
		bad("rate_per_second/per_chat_interval", "must not be negative (0: no pace)")
	}
	return errors.Join(errs...)
}
