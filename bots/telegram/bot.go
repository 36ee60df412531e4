// Package telegram connects one Telegram bot to pairingd as a channel of
// type telegram. It takes updates by long polling or by webhook, turns
// them into pairing.Service calls, and answers with texts from the
// templates catalog, sent through the Bot API with
// go-telegram-bot-api/v5. No pairing rule lives here.
//
// The token is a secret: tgbotapi puts it in every request URL, so every
// error is rebuilt without it, the SDK's logger is replaced, and the
// package's logger scrubs it from every line.
package telegram

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// Pairing is what the adapter needs of *pairing.Service: the chat
// commands, and the confirmations of site-initiated deep links
// (https://t.me/<bot>?start=<token>, see deeplinks.go).
type Pairing interface {
	pairing.Confirmations
	TouchLead(ctx context.Context, key pairing.LeadKey, p pairing.Profile) (pairing.Lead, error)
	IssuePIN(ctx context.Context, key pairing.LeadKey, p pairing.Profile, opt pairing.IssueOptions) (pairing.IssuedPIN, error)
	Status(ctx context.Context, key pairing.LeadKey) (pairing.LeadStatus, error)
	UnlinkLead(ctx context.Context, key pairing.LeadKey, actor pairing.Actor) (string, error)
	UnlinkByNotice(ctx context.Context, key pairing.LeadKey, token string) (string, error)
	SetBlocked(ctx context.Context, key pairing.LeadKey, blocked bool) error
}

var (
	_ Pairing         = (*pairing.Service)(nil)
	_ pairing.Channel = (*Bot)(nil)
)

// Bot is one Telegram bot serving as a pairing channel.
type Bot struct {
	cfg    Config
	svc    Pairing
	intake channel.Intake // where webhook deliveries and polled updates are stored
	texts  *templates.Catalog
	log    *slog.Logger
	clock  pairing.Clock
	obs    pairing.Observer // told of every message sent (send.go)
	http   *http.Client
	// ownClient: the HTTP client was made here, so Run may close its idle
	// connections when it stops.
	ownClient bool
	secret    string // the webhook's secret_token
	source    string // inbound source: "telegram:" + name

	// Tuning, replaced by tests.
	sleep        func(ctx context.Context, d time.Duration) error
	backoffMin   time.Duration // first wait after a failed poll or setup call
	backoffMax   time.Duration
	sendRetries  int           // 429 retries of one send
	maxRetryWait time.Duration // longest retry_after a send waits out
	infoEvery    time.Duration // webhook mode: how often getWebhookInfo is checked

	mu       sync.Mutex
	health   error
	username string // the bot's @username, from getMe
}

// New checks the configuration and builds the bot. It does no network
// I/O: Run calls getMe.
func New(cfg Config, deps channel.Deps[Pairing]) (*Bot, error) {
	deps, err := deps.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	cfg = cfg.withDefaults(deps.Texts)
	if err := cfg.validate(deps.Texts); err != nil {
		return nil, fmt.Errorf("telegram channel %q: %w", cfg.Name, err)
	}
	tokens.Store(cfg.Token, struct{}{})
	log := slog.New(redactHandler{inner: deps.Log.Handler(), token: cfg.Token}).With("channel_type", "telegram")
	installSDKLogger(log)

	b := &Bot{
		cfg: cfg, svc: deps.Service, intake: deps.Intake, texts: deps.Texts, log: log, clock: deps.Clock, obs: deps.Observer,
		http: cfg.HTTPClient, secret: cmp.Or(cfg.WebhookSecret, deriveSecret(cfg.Token, cfg.Name)), source: "telegram:" + cfg.Name,
		sleep: channel.Sleep, backoffMin: time.Second, backoffMax: time.Minute,
		sendRetries: 2, maxRetryWait: 10 * time.Second, infoEvery: 10 * time.Minute,
	}
	if b.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 8
		b.http = &http.Client{Transport: tr, Timeout: cfg.PollTimeout + 20*time.Second}
		b.ownClient = true
	}
	b.intake.Handle(b.source, b.handleInbound)
	if cfg.OneTapOff != "" {
		b.log.Info("one-tap sign-in button left out of /login", "channel", cfg.Name, "why", cfg.OneTapOff)
	}
	return b, nil
}

// deriveSecret makes the webhook secret from the token: unguessable
// without the token, and the same in every instance serving the bot.
func deriveSecret(token, name string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("pairingd telegram webhook secret\x00" + name))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Name is the channel's configured name.
func (b *Bot) Name() string { return b.cfg.Name }

// Mode is ModePolling or ModeWebhook.
func (b *Bot) Mode() string { return b.cfg.Mode }

// Health reports why the bot cannot take updates now: the last failure of
// getMe, getUpdates, deleteWebhook or setWebhook, cleared by the next
// success. Nil while the bot works, and before Run first called Telegram.
func (b *Bot) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.health == nil {
		return nil
	}
	return fmt.Errorf("telegram channel %q: %w", b.cfg.Name, b.health)
}

func (b *Bot) setHealth(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health = err
}

func (b *Bot) botUsername() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.username
}

// SendPIN sends the pairing message to the lead of pin.Lead: the PIN
// resend the site asks for (POST /v1/pins/resend). A blocked bot marks
// the lead blocked and wraps pairing.ErrChannelUnavailable; a 429 that
// outlasts the retries is a *pairing.RetryError; other failures wrap
// pairing.ErrChannelFailed. The cause never holds the token.
func (b *Bot) SendPIN(ctx context.Context, pin pairing.IssuedPIN) error {
	key := pin.Lead.Key()
	if key.Channel != b.cfg.Name {
		return &pairing.ChannelError{Err: pairing.ErrChannelUnavailable, Channel: b.cfg.Name,
			Cause: fmt.Errorf("the lead belongs to channel %q", key.Channel)}
	}
	chatID, err := strconv.ParseInt(key.ExternalID, 10, 64)
	if err != nil {
		return &pairing.ChannelError{Err: pairing.ErrChannelUnavailable, Channel: b.cfg.Name,
			Cause: errors.New("the lead's external id is not a Telegram chat id")}
	}
	err = b.sendPIN(ctx, chatID, b.locale(pin.Lead.Profile.Locale), pin)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBlocked):
		b.markBlocked(ctx, key)
		return &pairing.ChannelError{Err: pairing.ErrChannelUnavailable, Channel: b.cfg.Name, Cause: err}
	case errors.Is(err, ErrRateLimited):
		return &pairing.RetryError{Err: pairing.ErrRateLimited, RetryAfter: max(retryAfterOf(err), time.Second)}
	}
	return &pairing.ChannelError{Err: pairing.ErrChannelFailed, Channel: b.cfg.Name, Cause: err}
}

// markBlocked records that the person blocked the bot.
func (b *Bot) markBlocked(ctx context.Context, key pairing.LeadKey) {
	err := b.svc.SetBlocked(ctx, key, true)
	if err != nil && !errors.Is(err, pairing.ErrNotFound) {
		b.log.Error("mark lead blocked", "channel", b.cfg.Name, "err", err)
		return
	}
	b.log.Info("the person blocked the bot; lead marked blocked", "channel", b.cfg.Name)
}

// locale picks the text locale for a Telegram language_code: the shipped
// locale that matches it, else the channel's fallback.
func (b *Bot) locale(code string) string {
	if loc, ok := matchLocale(b.texts, code); ok {
		return loc
	}
	return b.cfg.FallbackLocale
}

// matchLocale finds the shipped locale for code, and reports whether it
// really matches rather than being the catalog's fallback for an unknown
// language.
func matchLocale(texts *templates.Catalog, code string) (string, bool) {
	if code == "" {
		return "", false
	}
	loc := texts.Locale(code)
	if loc != texts.Locales()[0] {
		return loc, true
	}
	want, err := language.Parse(strings.ReplaceAll(code, "_", "-"))
	if err != nil {
		return "", false
	}
	have, err := language.Parse(loc)
	if err != nil {
		return "", false
	}
	wb, _ := want.Base()
	hb, _ := have.Base()
	return loc, wb == hb
}
