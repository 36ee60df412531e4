package pairing

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Config holds the pairing rules (yaml section pairing). Zero values are
// replaced by the defaults in DefaultConfig, except MagicLinkTTL, whose
// zero means magic links are off.
type Config struct {
	// Secret keys the PIN HMAC. At least 32 bytes; "base64:" and base64
	// gives the bytes it decodes to. Empty: read from SecretFile.
	Secret HMACKey `yaml:"secret"`
	// SecretFile holds the secret when Secret is empty. Empty on SQLite:
	// the database's path + ".secret", made (0600) on first start. On
	// PostgreSQL one of the two must be set.
	SecretFile string `yaml:"secret_file"`
	// LinkURL is the site's PIN page; "{buid}" is replaced by the BUID.
	LinkURL string `yaml:"link_url"`
	// PINLength is the number of digits of a PIN.
	PINLength int `yaml:"pin_length"`
	// PINTTL is how long a PIN stays valid.
	PINTTL time.Duration `yaml:"pin_ttl"`
	// MaxAttempts is how many wrong PINs a web_users row may take before it
	// is locked.
	MaxAttempts int `yaml:"max_attempts"`
	// LockDuration is the cool-down after MaxAttempts wrong PINs.
	LockDuration time.Duration `yaml:"lock_duration"`
	// GrantTTL is how long a register or conflict grant stays valid.
	GrantTTL time.Duration `yaml:"grant_ttl"`
	// MagicLinkTTL > 0 turns magic links on: the BUID alone is accepted
	// once within this time. 0: off.
	MagicLinkTTL time.Duration `yaml:"magic_link_ttl"`
	// ReissueInterval is the shortest time between two PINs a bot issues to
	// one person.
	ReissueInterval time.Duration `yaml:"reissue_interval"`
	// ResendInterval is the shortest time between two POST /v1/pins/resend
	// for one BUID.
	ResendInterval time.Duration `yaml:"resend_interval"`
	// KeyFailureBudget is how many failed authorize calls (wrong PIN, unknown
	// BUID ...) one API key may make within KeyFailureWindow.
	KeyFailureBudget int           `yaml:"key_failure_budget"`
	KeyFailureWindow time.Duration `yaml:"key_failure_window"`
	// DeepLinkTTL is how long a site-initiated deep link's token works.
	DeepLinkTTL time.Duration `yaml:"deep_link_ttl"`
	// SiteName names the website in the chat's link notices ("You linked
	// this chat to your account on <SiteName>"); empty: "our website".
	SiteName string `yaml:"site_name"`
}

// HMACKey is a secret key given as text in the configuration.
type HMACKey []byte

// Base64KeyPrefix starts a key given as the base64 of its bytes (how
// generated and exported keys are written).
const Base64KeyPrefix = "base64:"

// UnmarshalText reads the key from the file or the environment: the text's
// bytes, or after "base64:" the bytes the standard base64 decodes to.
func (k *HMACKey) UnmarshalText(b []byte) error {
	if rest, ok := bytes.CutPrefix(b, []byte(Base64KeyPrefix)); ok {
		dec, err := base64.StdEncoding.DecodeString(string(rest))
		if err != nil {
			return errors.New("after base64: must be standard base64")
		}
		*k = dec
		return nil
	}
	*k = append(HMACKey(nil), b...)
	return nil
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		LinkURL:          "http://localhost:3000/pair?buid={buid}",
		PINLength:        6,
		PINTTL:           10 * time.Minute,
		MaxAttempts:      5,
		LockDuration:     15 * time.Minute,
		GrantTTL:         10 * time.Minute,
		ReissueInterval:  10 * time.Second,
		ResendInterval:   time.Minute,
		KeyFailureBudget: 300,
		KeyFailureWindow: 10 * time.Minute,
		DeepLinkTTL:      DefaultDeepLinkTTL,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.LinkURL == "" {
		c.LinkURL = d.LinkURL
	}
	for _, p := range []struct{ v, d *time.Duration }{
		{&c.PINTTL, &d.PINTTL}, {&c.LockDuration, &d.LockDuration}, {&c.GrantTTL, &d.GrantTTL},
		{&c.ReissueInterval, &d.ReissueInterval}, {&c.ResendInterval, &d.ResendInterval},
		{&c.KeyFailureWindow, &d.KeyFailureWindow}, {&c.DeepLinkTTL, &d.DeepLinkTTL},
	} {
		if *p.v == 0 {
			*p.v = *p.d
		}
	}
	for _, p := range []struct{ v, d *int }{
		{&c.PINLength, &d.PINLength}, {&c.MaxAttempts, &d.MaxAttempts}, {&c.KeyFailureBudget, &d.KeyFailureBudget},
	} {
		if *p.v == 0 {
			*p.v = *p.d
		}
	}
	return c
}

// Validate checks the configuration as written, before anything starts
// (an empty Secret is allowed: the caller generates one); each error names
// its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if len(c.Secret) > 0 && len(c.Secret) < 32 {
		bad("secret", "must be at least 32 characters, or base64: and 32 bytes (leave empty to use secret_file)")
	}
	if !strings.Contains(c.LinkURL, "{buid}") {
		bad("link_url", "must contain {buid}")
	} else if u, err := url.Parse(strings.ReplaceAll(c.LinkURL, "{buid}", "x")); err != nil || u.Host == "" {
		bad("link_url", "must be an absolute URL")
	}
	if c.PINLength < 4 || c.PINLength > 12 {
		bad("pin_length", "must be 4..12")
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		bad("max_attempts", "must be 1..100")
	}
	if c.KeyFailureBudget < 1 {
		bad("key_failure_budget", "must be at least 1")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"pin_ttl", c.PINTTL}, {"lock_duration", c.LockDuration}, {"grant_ttl", c.GrantTTL},
		{"key_failure_window", c.KeyFailureWindow}, {"deep_link_ttl", c.DeepLinkTTL},
	} {
		if d.v <= 0 {
			bad(d.key, "must be a positive duration")
		}
	}
	if c.MagicLinkTTL < 0 {
		bad("magic_link_ttl", "must not be negative (0 turns magic links off)")
	}
	if c.ReissueInterval < 0 || c.ResendInterval < 0 {
		bad("reissue_interval/resend_interval", "must not be negative")
	}
	return errors.Join(errs...)
}

// validate is Validate with the defaults filled in and a key required.
func (c Config) validate() error {
	if len(c.Secret) < 32 {
		return errors.New("pairing: secret must be at least 32 bytes")
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("pairing: %w", err)
	}
	return nil
}

// Service runs every pairing flow. It is safe for concurrent use.
type Service struct {
	store Store
	cfg   Config
	clock Clock
	rand  io.Reader
	log   *slog.Logger
	obs   Observer
	buid  *buidCodec

	mu       sync.RWMutex
	channels map[string]Channel
	signIns  *SignIns // nil until EnableSignIn
	// chanOpts are the operator's per-channel settings (SetChannelOptions).
	chanOpts map[string]ChannelOptions
	// noticeTexts renders link notices; nil: no notices.
	noticeTexts LinkNoticeTexts

	outbox outboxState // notifications: see outbox.go
}

// Option changes how New builds a Service.
type Option func(*Service)

// WithClock injects the clock (tests step a fake one).
func WithClock(c Clock) Option { return func(s *Service) { s.clock = c } }

// WithRand injects the source of randomness.
func WithRand(r io.Reader) Option { return func(s *Service) { s.rand = r } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New builds the service on a store.
func New(store Store, cfg Config, opts ...Option) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := newBUIDCodec()
	if err != nil {
		return nil, err
	}
	s := &Service{
		store:    store,
		cfg:      cfg,
		clock:    SystemClock{},
		rand:     CryptoRand,
		log:      slog.New(slog.DiscardHandler),
		obs:      NopObserver{},
		buid:     codec,
		channels: map[string]Channel{},
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Config returns the rules in force, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// Ready tells whether the database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// audit writes one audit line; a failure is logged, not returned, because
// the decided answer must not be lost for want of an audit row.
func (s *Service) audit(ctx context.Context, r Repo, e AuditEvent) {
	e.At = s.now()
	if err := r.AddAudit(ctx, e); err != nil {
		s.log.Error("audit write failed", "action", e.Action, "err", err)
	}
}

// ValidateUserID checks a site user id: 1..256 bytes of valid UTF-8 with no
// control characters (no NUL, CR, LF).
func ValidateUserID(field, id string) error {
	if id == "" {
		return invalid(field, "must not be empty")
	}
	if len(id) > 256 {
		return invalid(field, "must be at most 256 bytes")
	}
	return checkChars(field, id, false)
}

// StorableText tells whether both databases can keep s as text: valid
// UTF-8 without NUL (PostgreSQL refuses either; SQLite would keep them,
// and the engines must not differ).
func StorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// storable makes a platform's free text keepable: invalid UTF-8 becomes
// U+FFFD and NULs are dropped. Names are shown to people, not compared, so
// a cleaned name is better than a refused person.
func storable(s string) string {
	if StorableText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

func validateLeadKey(k LeadKey) error {
	if k.Channel == "" || len(k.Channel) > 64 {
		return invalid("channel", "must be 1..64 bytes")
	}
	if k.ExternalID == "" || len(k.ExternalID) > 128 || !StorableText(k.ExternalID) {
		return invalid("external_id", "must be 1..128 bytes of UTF-8")
	}
	return nil
}

// linkURL is the chat's link for a BUID: the channel's own page when the
// operator set one (the hosted PIN page), else pairing.link_url.
func (s *Service) linkURL(channel, buid string) string {
	tmpl := s.cfg.LinkURL
	if u := s.channelOptions(channel).LinkURL; u != "" {
		tmpl = u
	}
	return strings.ReplaceAll(tmpl, "{buid}", buid)
}

func retryAfter(until, now time.Time) time.Duration {
	d := until.Sub(now)
	if d < time.Second {
		d = time.Second
	}
	return d.Truncate(time.Second)
}

// linkRetries is how often withRetry runs a transaction that lost a race.
// Each run sees the winner's commit, so a few runs settle any realistic
// contention (40 chats linking and unlinking one user at once, in tests).
const linkRetries = 10

// withRetry runs a transaction again when a unique index refused a link,
// or a conditional update found the link changed, because a concurrent
// request committed first; the next run sees it and decides again. Every
// run is a whole transaction, so a lost run leaves nothing behind.
func (s *Service) withRetry(ctx context.Context, fn func(Repo) error) error {
	var err error
	for range linkRetries {
		err = s.store.Tx(ctx, fn)
		if !errors.Is(err, ErrRaced) {
			if err == nil {
				s.wakeForNotices()
			}
			return err
		}
	}
	return fmt.Errorf("link kept racing: %w", ErrConflict)
}
