package pairing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config holds the pairing rules. Zero values are replaced by the defaults
// in DefaultConfig.
type Config struct {
	// Secret keys the PIN HMAC. At least 32 bytes.
	Secret []byte
	// LinkURL is the site's PIN page; "{buid}" is replaced by the BUID.
	LinkURL string
	// PINLength is the number of digits of a PIN.
	PINLength int
	// PINTTL is how long a PIN stays valid.
	PINTTL time.Duration
	// MaxAttempts is how many wrong PINs a web_users row may take before it
	// is locked.
	MaxAttempts int
	// LockDuration is the cool-down after MaxAttempts wrong PINs.
	LockDuration time.Duration
	// GrantTTL is how long a register or conflict grant stays valid.
	GrantTTL time.Duration
	// MagicLink accepts the BUID alone, once, within MagicLinkTTL.
	MagicLink    bool
	MagicLinkTTL time.Duration
	// ReissueInterval is the shortest time between two PINs a bot issues to
	// one person.
	ReissueInterval time.Duration
	// ResendInterval is the shortest time between two POST /v1/pins/resend
	// for one BUID.
	ResendInterval time.Duration
	// KeyFailureBudget is how many failed authorize calls (wrong PIN, unknown
	// BUID ...) one API key may make within KeyFailureWindow.
	KeyFailureBudget int
	KeyFailureWindow time.Duration
	// DeepLinkTTL is how long a site-initiated deep link's token works.
	DeepLinkTTL time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		LinkURL:          "http://127.0.0.1:8080/pair?buid={buid}",
		PINLength:        6,
		PINTTL:           10 * time.Minute,
		MaxAttempts:      5,
		LockDuration:     15 * time.Minute,
		GrantTTL:         10 * time.Minute,
		MagicLinkTTL:     time.Hour,
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
	if c.PINLength == 0 {
		c.PINLength = d.PINLength
	}
	if c.PINTTL == 0 {
		c.PINTTL = d.PINTTL
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.LockDuration == 0 {
		c.LockDuration = d.LockDuration
	}
	if c.GrantTTL == 0 {
		c.GrantTTL = d.GrantTTL
	}
	if c.MagicLinkTTL == 0 {
		c.MagicLinkTTL = d.MagicLinkTTL
	}
	if c.ReissueInterval == 0 {
		c.ReissueInterval = d.ReissueInterval
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = d.ResendInterval
	}
	if c.KeyFailureBudget == 0 {
		c.KeyFailureBudget = d.KeyFailureBudget
	}
	if c.KeyFailureWindow == 0 {
		c.KeyFailureWindow = d.KeyFailureWindow
	}
	if c.DeepLinkTTL == 0 {
		c.DeepLinkTTL = d.DeepLinkTTL
	}
	return c
}

func (c Config) validate() error {
	switch {
	case len(c.Secret) < 32:
		return errors.New("pairing: secret must be at least 32 bytes")
	case !strings.Contains(c.LinkURL, "{buid}"):
		return errors.New("pairing: link URL must contain {buid}")
	case c.PINLength < 4 || c.PINLength > 12:
		return errors.New("pairing: PIN length must be 4..12")
	case c.MaxAttempts < 1:
		return errors.New("pairing: max attempts must be at least 1")
	case c.PINTTL < 0 || c.LockDuration < 0 || c.GrantTTL < 0 || c.MagicLinkTTL < 0 ||
		c.ReissueInterval < 0 || c.ResendInterval < 0 || c.KeyFailureWindow < 0 || c.KeyFailureBudget < 0:
		return errors.New("pairing: durations and budgets must not be negative")
	case c.DeepLinkTTL < 0:
		return errors.New("pairing: deep link TTL must not be negative")
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
	buid  *buidCodec

	// serialWrites: the store runs one write transaction at a time
	// (SQLite), so a budget check inside a transaction is atomic with its
	// effect (see Authorize).
	serialWrites bool

	mu       sync.RWMutex
	channels map[string]Channel
	signIns  *SignIns // nil until EnableSignIn

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
		buid:     codec,
		channels: map[string]Channel{},
	}
	for _, o := range opts {
		o(s)
	}
	if ws, ok := store.(WriteSerializer); ok {
		s.serialWrites = ws.SerializesWrites()
	}
	return s, nil
}

// WriteSerializer is implemented by stores that run one write transaction
// at a time (SQLite with its single writer connection).
type WriteSerializer interface {
	SerializesWrites() bool
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
	if !utf8.ValidString(id) {
		return invalid(field, "must be valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}

func validateLeadKey(k LeadKey) error {
	if k.Channel == "" || len(k.Channel) > 64 {
		return invalid("channel", "must be 1..64 bytes")
	}
	if k.ExternalID == "" || len(k.ExternalID) > 128 || !utf8.ValidString(k.ExternalID) {
		return invalid("external_id", "must be 1..128 bytes of UTF-8")
	}
	return nil
}

func (s *Service) linkURL(buid string) string {
	return strings.ReplaceAll(s.cfg.LinkURL, "{buid}", buid)
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
		if !errors.Is(err, ErrUserTaken) {
			return err
		}
	}
	return fmt.Errorf("link kept racing: %w", ErrConflict)
}
