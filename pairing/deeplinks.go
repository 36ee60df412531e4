package pairing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Site-initiated pairing (docs/design.md, "The flows", flow 2). The site asks for a deep
// link for one of its users; the person opens it in the messenger; the bot
// shows which site account is being linked and links only when the person
// confirms, under the same rules as authorize (link).

// linkTokenPrefix starts every deep-link token. With 256 random bits in
// base64url the token is 47 characters of A-Z a-z 0-9 _ -, within what
// Telegram's start parameter and Messenger's ref accept.
const linkTokenPrefix = "pdl_"

// maxLinkTokenLen is the longest token Telegram's start parameter carries.
const maxLinkTokenLen = 64

// MaxDisplayNameRunes bounds the display name the site may pass.
const MaxDisplayNameRunes = 64

// DefaultDeepLinkTTL is how long a deep link works when the config says
// nothing.
const DefaultDeepLinkTTL = 15 * time.Minute

// ActorDeepLink says a link was made by a person confirming a deep link.
const ActorDeepLink Actor = "deep_link"

// ErrChannelUnknown: no channel of that name is configured.
var ErrChannelUnknown = errors.New("channel unknown")

// LinkToken is a deep-link token as stored: hashed, with the site user it
// links and the channel it may be opened in.
type LinkToken struct {
	ID      int64
	Hash    []byte
	Channel string
	UserID  string
	// DisplayName is what the person is shown before confirming; may be
	// empty.
	DisplayName string
	KeyID       int64
	ExpiresAt   time.Time
	UsedAt      time.Time // zero while unspent
	// LeadID is the lead that spent the token; 0 while unspent.
	LeadID    int64
	CreatedAt time.Time
}

// LinkTokenRepo keeps deep-link tokens.
type LinkTokenRepo interface {
	CreateLinkToken(ctx context.Context, t LinkToken) error
	LinkTokenByHash(ctx context.Context, hash []byte) (LinkToken, error)
	// SpendLinkToken marks the token used by leadID with a conditional
	// update; it reports whether exactly one unused, unexpired row changed.
	SpendLinkToken(ctx context.Context, id, leadID int64, now time.Time) (bool, error)
}

// DeepLinkRequest is one call of POST /v1/deep-links.
type DeepLinkRequest struct {
	UserID      string
	Channel     string
	DisplayName string
	KeyID       int64
}

// DeepLink is a created deep link. Token is shown once and never stored.
type DeepLink struct {
	Token     string
	URL       string
	Channel   string
	ExpiresAt time.Time
}

// DeepLinkPreview is what the bot shows before the person confirms.
type DeepLinkPreview struct {
	DisplayName string
	ExpiresAt   time.Time
	// SignIn is set when the token asks to confirm a sign-in instead of a
	// link: the bot shows the site's name and the match code.
	SignIn *SignInPreview
}

// CreateDeepLink is POST /v1/deep-links: a one-time token for userID,
// stored hashed, and the channel's URL carrying it.
func (s *Service) CreateDeepLink(ctx context.Context, req DeepLinkRequest) (DeepLink, error) {
	if err := ValidateUserID("user_id", req.UserID); err != nil {
		return DeepLink{}, err
	}
	name, err := NormalizeDisplayName(req.DisplayName)
	if err != nil {
		return DeepLink{}, err
	}
	if req.Channel == "" || len(req.Channel) > 64 {
		return DeepLink{}, invalid("channel", "must be 1..64 bytes")
	}
	if _, ok := s.channel(req.Channel); !ok {
		return DeepLink{}, ErrChannelUnknown
	}
	token, err := randomToken(s.rand, linkTokenPrefix)
	if err != nil {
		return DeepLink{}, err
	}
	url, err := s.deepLinkURL(req.Channel, token)
	if err != nil {
		return DeepLink{}, err
	}
	now := s.now()
	rec := LinkToken{
		Hash: HashToken([]byte(token)), Channel: req.Channel, UserID: req.UserID, DisplayName: name,
		KeyID: req.KeyID, ExpiresAt: now.Add(s.cfg.DeepLinkTTL), CreatedAt: now,
	}
	if err := s.store.CreateLinkToken(ctx, rec); err != nil {
		return DeepLink{}, err
	}
	s.audit(ctx, s.store, AuditEvent{Action: "deep_link_create", Outcome: "created", KeyID: req.KeyID, UserID: req.UserID, Detail: req.Channel})
	return DeepLink{Token: token, URL: url, Channel: req.Channel, ExpiresAt: rec.ExpiresAt}, nil
}

// DeepLinkByToken is GET /v1/deep-links/{token}/qr.png: the link of an
// unspent, unexpired token.
func (s *Service) DeepLinkByToken(ctx context.Context, token string) (DeepLink, error) {
	rec, err := s.linkToken(ctx, token)
	if err != nil {
		return DeepLink{}, err
	}
	if err := linkTokenState(rec, s.now()); err != nil {
		return DeepLink{}, err
	}
	url, err := s.deepLinkURL(rec.Channel, token)
	if err != nil {
		return DeepLink{}, err
	}
	return DeepLink{Token: token, URL: url, Channel: rec.Channel, ExpiresAt: rec.ExpiresAt}, nil
}

// PreviewDeepLink tells a bot what a token would link, without spending
// it: the display name to show next to the confirm button. A token made
// for another channel is unknown here.
func (s *Service) PreviewDeepLink(ctx context.Context, key LeadKey, token string) (DeepLinkPreview, error) {
	if si, ok := s.signInsOf(token); ok {
		return si.preview(ctx, key, token)
	}
	rec, err := s.chatLinkToken(ctx, key.Channel, token)
	if err != nil {
		return DeepLinkPreview{}, err
	}
	return DeepLinkPreview{DisplayName: rec.DisplayName, ExpiresAt: rec.ExpiresAt}, nil
}

// RedeemDeepLink is the person's confirmation: in one transaction it
// spends the token (a conditional update: of concurrent confirmations one
// wins, the others get ErrTokenUsed) and links the lead's person to the
// token's site user under the rules of link. A conflict is an error
// wrapping *ConflictError and changes nothing: the token stays unspent, so
// the person may resolve it (log out) and confirm again.
func (s *Service) RedeemDeepLink(ctx context.Context, key LeadKey, token string) (Result, error) {
	if si, ok := s.signInsOf(token); ok {
		return si.answer(ctx, key, token, SignInConfirmed)
	}
	if err := validateLeadKey(key); err != nil {
		return Result{}, err
	}
	rec, err := s.chatLinkToken(ctx, key.Channel, token)
	if err != nil {
		return Result{}, err
	}
	var res Result
	err = s.withRetry(ctx, func(r Repo) error {
		now := s.now()
		lead, err := r.LeadByKey(ctx, key)
		if err != nil {
			return err
		}
		ok, err := r.SpendLinkToken(ctx, rec.ID, lead.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			cur, err := r.LinkTokenByHash(ctx, rec.Hash)
			if err != nil {
				return err
			}
			if err := linkTokenState(cur, now); err != nil {
				return err
			}
			return ErrTokenUsed
		}
		wu, err := r.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			return err
		}
		res, err = s.link(ctx, r, wu, lead, rec.UserID, false, ActorDeepLink)
		if err != nil {
			return err
		}
		s.audit(ctx, r, AuditEvent{Action: "deep_link_spend", Outcome: string(res.Outcome), KeyID: rec.KeyID, WebUserID: wu.ID, PersonID: res.PersonID, UserID: rec.UserID, Detail: key.Channel})
		return nil
	})
	if err != nil {
		s.audit(ctx, s.store, AuditEvent{Action: "deep_link_spend", Outcome: tokenErrorCode(err), KeyID: rec.KeyID, UserID: rec.UserID, Detail: key.Channel})
		return Result{}, err
	}
	return res, nil
}

// deepLinkURL asks the channel for the link that opens it with token.
func (s *Service) deepLinkURL(channel, token string) (string, error) {
	ch, ok := s.channel(channel)
	if !ok {
		return "", ErrChannelUnknown
	}
	url, err := ch.DeepLinkURL(token)
	if err != nil {
		return "", &ChannelError{Err: ErrChannelUnavailable, Channel: channel, Cause: err}
	}
	return url, nil
}

// linkToken finds a token by its hash. Anything that cannot be one of our
// tokens is ErrTokenUnknown without a database read.
func (s *Service) linkToken(ctx context.Context, token string) (LinkToken, error) {
	if !PlausibleLinkToken(token) {
		return LinkToken{}, ErrTokenUnknown
	}
	rec, err := s.store.LinkTokenByHash(ctx, HashToken([]byte(token)))
	if errors.Is(err, ErrNotFound) {
		return LinkToken{}, ErrTokenUnknown
	}
	return rec, err
}

// chatLinkToken finds a token opened in a chat of channel, unspent and
// unexpired; a token made for another channel is unknown there.
func (s *Service) chatLinkToken(ctx context.Context, channel, token string) (LinkToken, error) {
	rec, err := s.linkToken(ctx, token)
	switch {
	case err != nil:
		return LinkToken{}, err
	case rec.Channel != channel:
		return LinkToken{}, ErrTokenUnknown
	}
	return rec, linkTokenState(rec, s.now())
}

// PlausibleLinkToken tells whether s has the shape of a deep-link token:
// the prefix, then up to 64 characters in all of A-Z a-z 0-9 _ -.
func PlausibleLinkToken(s string) bool {
	if !strings.HasPrefix(s, linkTokenPrefix) || len(s) > maxLinkTokenLen || len(s) <= len(linkTokenPrefix) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

// tokenErrorCode names a refusal in the audit trail.
func tokenErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrTokenUnknown):
		return "token_unknown"
	case errors.Is(err, ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, ErrTokenUsed):
		return "token_used"
	}
	return errorCode(err)
}

// linkTokenState refuses a used or expired token.
func linkTokenState(t LinkToken, now time.Time) error {
	if !t.UsedAt.IsZero() {
		return ErrTokenUsed
	}
	if !t.ExpiresAt.After(now) {
		return ErrTokenExpired
	}
	return nil
}

// NormalizeDisplayName checks the display name a site passes with a deep
// link: surrounding white space is dropped; what remains may be empty (no
// name: the bot shows a neutral text) or up to MaxDisplayNameRunes
// characters of valid UTF-8 without control characters, line or paragraph
// separators, or bidirectional overrides (which could make a name read as
// another in the chat).
func NormalizeDisplayName(s string) (string, error) {
	if len(s) > 4*MaxDisplayNameRunes+64 {
		return "", invalid("display_name", fmt.Sprintf("must be at most %d characters", MaxDisplayNameRunes))
	}
	if !utf8.ValidString(s) {
		return "", invalid("display_name", "must be valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > MaxDisplayNameRunes {
		return "", invalid("display_name", fmt.Sprintf("must be at most %d characters", MaxDisplayNameRunes))
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || bidiControl(r) {
			return "", invalid("display_name", "must not contain control or bidirectional formatting characters")
		}
	}
	return s, nil
}

func bidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
