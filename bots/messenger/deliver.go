package messenger

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Messenger's limits and pace for a notification.
const (
	// MaxMessageText is the Send API's text limit, in characters.
	MaxMessageText = 2000
	// DefaultRatePerSecond is a conservative pace per Page: Meta publishes
	// no fixed rate for the Send API, only codes 4/613 when it is exceeded.
	DefaultRatePerSecond = 10
	// DefaultPerChatInterval spaces the messages to one person.
	DefaultPerChatInterval = time.Second
	// rateLimitPause is how long a Page pauses after codes 4, 32 or 613:
	// Meta gives no retry_after.
	rateLimitPause = time.Minute
)

// Limits are what a notification through a Page may hold: 2000
// characters of text, 640 in a button template (with buttons).
func (c *pageChannel) Limits() pairing.ChannelLimits {
	return pairing.ChannelLimits{MaxText: MaxMessageText, MaxTextWithButtons: maxTextLen}
}

// Pace is how fast the outbox worker sends through this Page.
func (c *pageChannel) Pace() pairing.Pace { return c.p.cfg.Pace }

// Deliver sends a notification with the Page's message tag (default
// ACCOUNT_UPDATE), so it may go out after the 24-hour window: plain text,
// or a button template with URL buttons. One attempt, no retries of its
// own; errors are *pairing.DeliveryError. A thread another app controls
// (a human agent) is not written over: the delivery fails.
func (c *pageChannel) Deliver(ctx context.Context, m pairing.OutboundMessage) error {
	p := c.p
	if m.Lead.Channel != p.cfg.Name {
		return &pairing.DeliveryError{Permanent: true, Reason: pairing.ReasonRejected,
			Detail: fmt.Sprintf("the lead belongs to channel %q", m.Lead.Channel)}
	}
	msg := outMessage{Text: m.Text}
	if len(m.Buttons) > 0 {
		var buttons []button
		for _, b := range m.Buttons {
			if b.Data != "" {
				buttons = append(buttons, button{Type: "postback", Payload: b.Data, Title: b.Text})
				continue
			}
			buttons = append(buttons, button{Type: "web_url", URL: b.URL, Title: b.Text})
		}
		msg = outMessage{Attachment: &attachment{Type: "template", Payload: templatePayload{
			TemplateType: "button", Text: m.Text, Buttons: buttons,
		}}}
	}
	req := sendRequest{Recipient: recipient{ID: m.Lead.ExternalID}, MessagingType: "MESSAGE_TAG", Tag: p.cfg.MessageTag, Message: msg}
	var out struct {
		MessageID string `json:"message_id"`
	}
	err := p.graph.once(ctx, http.MethodPost, "/me/messages", nil, req, &out)
	p.graph.observe(err)
	return sendDeliveryError(err)
}

// sendDeliveryError maps a Send API failure to the outbox's terms.
func sendDeliveryError(err error) error {
	if err == nil {
		return nil
	}
	detail := err.Error()
	var ge *GraphError
	if errors.As(err, &ge) {
		detail = fmt.Sprintf("code %d, subcode %d: %s", ge.Code, ge.Subcode, ge.Message)
	}
	de := &pairing.DeliveryError{Reason: pairing.ReasonUnavailable, Detail: detail}
	switch {
	case errors.Is(err, ErrBlocked):
		de.Blocked, de.Permanent, de.Reason = true, true, pairing.ReasonBlocked
	case errors.Is(err, ErrOutsideWindow):
		de.Permanent, de.Reason = true, pairing.ReasonOutsideWindow
	case errors.Is(err, ErrThreadControlled):
		de.Permanent, de.Reason = true, pairing.ReasonThreadControlled
	case errors.Is(err, ErrRateLimited):
		de.Reason, de.RetryAfter = pairing.ReasonRateLimited, rateLimitPause
	case errors.Is(err, ErrRejected):
		de.Permanent, de.Reason = true, pairing.ReasonRejected
	}
	return de
}
