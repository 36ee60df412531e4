package pairing

import (
	"context"
	"errors"
	"regexp"
	"time"
)

// Channel is one configured bot connection (a Telegram bot, a Messenger
// Page) as the service sees it: everything the service asks of a channel.
// An adapter builds one Channel per configured channel and the wiring
// registers it with Service.RegisterChannel under its Name.
//
// A channel reports every message it sends to its platform, whether the
// service asked for it or not, to the Observer it was built with
// (Observer.PlatformSend); the service counts none.
//
// The other direction, a person's action reaching the service, is the
// adapter calling Service methods it declares in a small interface of its
// own (TouchLead, IssuePIN, the Confirmations below ...).
type Channel interface {
	// Name is the channel's configured name (see ValidateChannelName),
	// used in lead records, routes and the CLI.
	Name() string
	// SendPIN sends the pairing message (link with BUID, PIN, validity) to
	// pin.Lead: the PIN resend the site asks for. A blocked bot marks the
	// lead blocked and wraps ErrChannelUnavailable; a rate limit is a
	// *RetryError; other failures wrap ErrChannelFailed.
	SendPIN(ctx context.Context, pin IssuedPIN) error
	// Deliver sends one notification: exactly one attempt (the outbox
	// worker retries), nil or an error wrapping a *DeliveryError.
	Deliver(ctx context.Context, m OutboundMessage) error
	// Limits are what a notification through the channel may hold. A
	// channel that carries no notifications reports zero limits.
	Limits() ChannelLimits
	// Pace is how fast the outbox worker may send through the channel.
	Pace() Pace
	// DeepLinkURL is the link that opens the chat with a one-time token
	// (t.me/<bot>?start=, m.me/<page>?ref=). It fails when the channel
	// cannot tell yet (a bot whose username is unknown), and with
	// ErrUnsupported when the platform has no such link.
	DeepLinkURL(token string) (string, error)
	// Health is why the channel cannot take or send messages now; nil while
	// it works. Shown on /readyz as an optional check.
	Health() error
}

// ErrUnsupported is a channel saying its platform cannot do what was asked.
var ErrUnsupported = errors.New("not supported by this channel")

// Confirmations is the service side of "ask the person, report the answer".
// A person opens the chat with a one-time token; the adapter asks Preview
// what the token would do and shows that question with Confirm / Cancel
// buttons; Confirm calls Redeem, which spends the token; Cancel calls
// Decline.
//
// A token asks one of two questions: "link this chat to the site account
// <DisplayName>?" (site-initiated pairing) or, when the preview's SignIn is
// set, "sign in to <site> with match code <code>?" (OpenID Connect). The
// adapter renders the question; the answer goes through the same calls.
type Confirmations interface {
	// PreviewDeepLink tells what a token would do (the display name to
	// show) without spending it. Unknown, expired and used tokens are
	// ErrTokenUnknown, ErrTokenExpired and ErrTokenUsed.
	PreviewDeepLink(ctx context.Context, key LeadKey, token string) (DeepLinkPreview, error)
	// RedeemDeepLink is the person's Confirm: it spends token and links the
	// lead's person to the token's site user. Errors as above; a taken link
	// is an error wrapping *ConflictError and spends nothing.
	RedeemDeepLink(ctx context.Context, key LeadKey, token string) (Result, error)
	// DeclineDeepLink is the person's Cancel: a sign-in is declined (its
	// page says so); a link token stays unspent until it expires.
	DeclineDeepLink(ctx context.Context, key LeadKey, token string) error
}

var _ Confirmations = (*Service)(nil)

// OutboundMessage is one notification delivery handed to a channel.
type OutboundMessage struct {
	DeliveryID int64
	MessageID  int64
	Lead       Lead
	Text       string
	Buttons    []Button
}

// DeliveryError is why a platform did not take a message.
type DeliveryError struct {
	// Permanent: sending again cannot help.
	Permanent bool
	// Blocked: the person blocked the bot; the lead is marked blocked.
	// Implies Permanent.
	Blocked bool
	// RetryAfter is how long the platform asked us to wait (Telegram's
	// retry_after); the whole channel pauses that long.
	RetryAfter time.Duration
	// Reason is one of the Reason* words.
	Reason string
	// Detail is the platform's words, free of secrets.
	Detail string
}

func (e *DeliveryError) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

// ChannelLimits are what a channel can carry, checked when a message is
// accepted so that a message is refused at once rather than failing later.
type ChannelLimits struct {
	// MaxText is the longest text, in characters (Unicode code points), or
	// in UTF-16 code units when UTF16 is set (Telegram counts those).
	MaxText int
	// MaxTextWithButtons is the longest text when buttons are attached
	// (Messenger's button template: 640); 0: MaxText.
	MaxTextWithButtons int
	UTF16              bool
}

// Pace is how fast a worker sends through one channel.
type Pace struct {
	// RatePerSecond bounds the messages per second through the channel
	// (the bot or Page as a whole).
	RatePerSecond float64 `yaml:"rate_per_second"`
	// PerChatInterval is the least time between the end of one send to a
	// chat and the start of the next one to the same chat.
	PerChatInterval time.Duration `yaml:"per_chat_interval"`
}

var channelNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidateChannelName is the one rule for a channel's configured name:
// 1..64 of a-z 0-9 _ -, starting with a letter or digit, so that it is
// safe in routes (/webhooks/telegram/<name>), inbound sources and logs.
func ValidateChannelName(name string) error {
	if !channelNamePattern.MatchString(name) {
		return invalid("name", "must be 1..64 of a-z 0-9 _ - starting with a letter or digit")
	}
	return nil
}

// RegisterChannel makes a channel reachable by its name: PIN resends, deep
// links, notifications. A second channel of the same name replaces the
// first.
func (s *Service) RegisterChannel(ch Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[ch.Name()] = ch
}

func (s *Service) channel(name string) (Channel, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ch, ok := s.channels[name]
	return ch, ok
}

// deliveryChannel is a registered channel that carries notifications,
// with its limits and pace read once per use.
type deliveryChannel struct {
	d      Channel
	limits ChannelLimits
	pace   Pace
}

// deliverer finds the channel that carries notifications of name.
func (s *Service) deliverer(name string) (deliveryChannel, bool) {
	ch, ok := s.channel(name)
	if !ok {
		return deliveryChannel{}, false
	}
	limits := ch.Limits()
	if limits.MaxText <= 0 {
		return deliveryChannel{}, false
	}
	return deliveryChannel{d: ch, limits: limits, pace: ch.Pace()}, true
}
