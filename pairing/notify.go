package pairing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of a notification that hold whatever the channel.
const (
	// MaxNotifyText is Telegram's limit (UTF-16 code units), the largest of
	// the channels'. Messenger's smaller limits are checked per lead.
	MaxNotifyText = 4096
	// MaxButtons fits Messenger's button template (1..3 buttons).
	MaxButtons = 3
	// MaxButtonText is Messenger's button title limit, in characters.
	MaxButtonText = 20
	// MaxButtonURL bounds a button's URL, in bytes.
	MaxButtonURL = 2048
	// maxNotifyChannels bounds the channels filter.
	maxNotifyChannels = 16
)

// Notify queues a message to every lead of the person linked to
// req.UserID (or the leads on req.Channels): the message and one delivery
// per lead are written in one transaction, and a NotificationWorker sends them. A lead
// that blocked the bot, or whose channel is not configured here, gets a
// delivery that is skipped at once. With an idempotency key, the same key
// (per API key) within 24 hours returns the first message and queues
// nothing; with a different request it is ErrIdempotencyReused.
func (s *Service) Notify(ctx context.Context, req NotifyRequest) (Message, error) {
	if err := s.validateNotify(&req); err != nil {
		return Message{}, err
	}
	hash := notifyHash(req)
	var out Message
	var err error
	// A unique index refuses the second of two concurrent requests with one
	// idempotency key; run again, it finds the first one's message.
	for range 3 {
		err = s.store.Tx(ctx, func(r Repo) error {
			var err error
			out, err = s.queue(ctx, r, req, hash)
			return err
		})
		if !errors.Is(err, ErrRaced) {
			break
		}
	}
	if err != nil {
		return Message{}, err
	}
	if !out.Replayed {
		s.wakeWorkers()
	}
	return out, nil
}

func (s *Service) queue(ctx context.Context, r Repo, req NotifyRequest, hash []byte) (Message, error) {
	now := s.now()
	if req.IdempotencyKey != "" {
		m, err := r.MessageByIdempotencyKey(ctx, req.KeyID, req.IdempotencyKey)
		switch {
		case err == nil && m.CreatedAt.After(now.Add(-idempotencyWindow)):
			if !bytes.Equal(m.RequestHash, hash) {
				return Message{}, ErrIdempotencyReused
			}
			m.Replayed = true
			return m, nil
		case err == nil:
			if err := r.ForgetIdempotencyKey(ctx, m.ID); err != nil {
				return Message{}, err
			}
		case !errors.Is(err, ErrNotFound):
			return Message{}, err
		}
	}
	wu, err := r.WebUserByUserID(ctx, req.UserID)
	if errors.Is(err, ErrNotFound) {
		return Message{}, ErrNotLinked
	}
	if err != nil {
		return Message{}, err
	}
	leads, err := r.LeadsOfPerson(ctx, wu.PersonID)
	if err != nil {
		return Message{}, err
	}
	m := Message{
		UserID: req.UserID, PersonID: wu.PersonID, Text: req.Text, Buttons: req.Buttons,
		KeyID: req.KeyID, IdempotencyKey: req.IdempotencyKey, RequestHash: hash, CreatedAt: now,
	}
	for _, l := range leads {
		if len(req.Channels) > 0 && !slices.Contains(req.Channels, l.Channel) {
			continue
		}
		d := Delivery{LeadID: l.ID, Channel: l.Channel, ExternalID: l.ExternalID, Status: DeliveryQueued,
			NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
		dc, ok := s.deliverer(l.Channel)
		switch {
		case !ok:
			d.Status, d.LastError, d.FinishedAt = DeliverySkipped, ReasonChannelMissing, now
		case l.Blocked:
			d.Status, d.LastError, d.FinishedAt = DeliverySkipped, ReasonBlocked, now
		default:
			if err := checkLimits(dc.limits, l.Channel, req); err != nil {
				return Message{}, err
			}
		}
		m.Deliveries = append(m.Deliveries, d)
	}
	if len(m.Deliveries) == 0 {
		return Message{}, &ChannelError{Err: ErrChannelUnavailable, Channel: strings.Join(req.Channels, ","),
			Cause: errors.New("the person has no lead on the requested channels")}
	}
	if err := r.CreateMessage(ctx, &m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Message returns a queued message with the state of its deliveries.
func (s *Service) Message(ctx context.Context, id int64) (Message, error) {
	if id <= 0 {
		return Message{}, ErrNotFound
	}
	return s.store.MessageByID(ctx, id)
}

// validateNotify checks a request and puts its channels in a canonical
// order (sorted, without duplicates), so that the same request hashes the
// same.
func (s *Service) validateNotify(req *NotifyRequest) error {
	if err := ValidateUserID("user_id", req.UserID); err != nil {
		return err
	}
	if err := checkChatText("text", req.Text, true); err != nil {
		return err
	}
	if n := utf16Len(req.Text); n > MaxNotifyText {
		return invalid("text", fmt.Sprintf("must be at most %d characters (UTF-16 code units), got %d", MaxNotifyText, n))
	}
	if len(req.Buttons) > MaxButtons {
		return invalid("buttons", fmt.Sprintf("must be at most %d", MaxButtons))
	}
	for i, b := range req.Buttons {
		field := fmt.Sprintf("buttons.%d", i)
		if err := checkChatText(field+".text", b.Text, false); err != nil {
			return err
		}
		if n := utf8.RuneCountInString(b.Text); n > MaxButtonText {
			return invalid(field+".text", fmt.Sprintf("must be at most %d characters", MaxButtonText))
		}
		if b.Data != "" {
			return invalid(field+".data", "is not accepted")
		}
		if err := checkButtonURL(b.URL); err != nil {
			return invalid(field+".url", err.Error())
		}
	}
	if len(req.Channels) > maxNotifyChannels {
		return invalid("channels", fmt.Sprintf("must name at most %d channels", maxNotifyChannels))
	}
	chans := slices.Clone(req.Channels)
	slices.Sort(chans)
	req.Channels = slices.Compact(chans)
	for _, name := range req.Channels {
		if _, ok := s.deliverer(name); !ok {
			return invalid("channels", "names a channel that is not configured or cannot carry notifications")
		}
	}
	if k := req.IdempotencyKey; k != "" {
		if len(k) > maxIdempotencyKeyLength {
			return invalid("Idempotency-Key", fmt.Sprintf("must be at most %d characters", maxIdempotencyKeyLength))
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				return invalid("Idempotency-Key", "must be printable ASCII")
			}
		}
	}
	return nil
}

// checkChatText refuses empty texts, invalid UTF-8 and control characters
// (newlines and tabs are allowed in a message text, not in a button).
func checkChatText(field, s string, multiline bool) error {
	if strings.TrimSpace(s) == "" {
		return invalid(field, "must not be empty")
	}
	return checkChars(field, s, multiline)
}

// checkChars refuses invalid UTF-8 and control characters, but for
// newlines and tabs when multiline.
func checkChars(field, s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// checkButtonURL accepts absolute http(s) URLs to a public host: Telegram
// refuses buttons to localhost and private addresses.
func checkButtonURL(raw string) error {
	if raw == "" || len(raw) > MaxButtonURL {
		return fmt.Errorf("must be 1..%d bytes", MaxButtonURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return errors.New("must be an absolute http or https URL")
	}
	host := strings.ToLower(u.Hostname())
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() {
			return errors.New("must point to a public host")
		}
		return nil
	}
	if !strings.Contains(host, ".") || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return errors.New("must point to a public host")
	}
	return nil
}

// checkLimits refuses a text the lead's channel cannot carry in one
// message: nothing is cut silently.
func checkLimits(l ChannelLimits, channel string, req NotifyRequest) error {
	limit := l.MaxText
	if len(req.Buttons) > 0 && l.MaxTextWithButtons > 0 {
		limit = l.MaxTextWithButtons
	}
	if limit <= 0 {
		return nil
	}
	n := utf8.RuneCountInString(req.Text)
	if l.UTF16 {
		n = utf16Len(req.Text)
	}
	if n <= limit {
		return nil
	}
	why := fmt.Sprintf("is %d characters; channel %q takes at most %d", n, channel, limit)
	if len(req.Buttons) > 0 && l.MaxTextWithButtons > 0 {
		why += " with buttons"
	}
	return invalid("text", why+" (send a shorter text, or leave the channel out with channels)")
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// notifyHash identifies a request's content for the idempotency check.
func notifyHash(req NotifyRequest) []byte {
	b, _ := json.Marshal(struct {
		UserID   string   `json:"u"`
		Text     string   `json:"t"`
		Buttons  []Button `json:"b"`
		Channels []string `json:"c"`
	}{req.UserID, req.Text, req.Buttons, req.Channels})
	h := sha256.Sum256(b)
	return h[:]
}
