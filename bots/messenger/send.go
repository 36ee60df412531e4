package messenger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/pairingd/pairingd/pairing"
)

// Messenger's limits on what a message may hold.
const (
	maxTextLen    = 640 // button template text, characters
	maxTitleRunes = 20  // button and quick reply titles
)

// Every message a Page sends goes through send or Deliver, and each
// reports it once to the observer with its kind (pairing.SendPIN,
// SendReply, SendNotification) and result. The handover protocol's calls
// are not messages and are not counted.

// observeSend reports one message sent to the Send API.
func (h *Hub) observeSend(p *page, kind string, err error) {
	h.obs.PlatformSend(p.cfg.Name, kind, pairing.SendResult(sendDeliveryError(err)))
}

// send sends one message of kind: as a RESPONSE while the person wrote
// within 24 hours, else with the Page's message tag. A blocked person's
// lead is marked blocked. The error wraps one of the Err* sentinels.
func (h *Hub) send(ctx context.Context, p *page, key pairing.LeadKey, kind string, msg outMessage) error {
	req := sendRequest{Recipient: recipient{ID: key.ExternalID}, MessagingType: "RESPONSE", Message: msg}
	if !h.inWindow(key) {
		req.MessagingType, req.Tag = "MESSAGE_TAG", p.cfg.MessageTag
	}
	err := p.graph.send(ctx, req)
	h.observeSend(p, kind, err)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrBlocked) {
		if berr := h.svc.SetBlocked(ctx, key, true); berr != nil && !errors.Is(berr, pairing.ErrNotFound) {
			h.log.Error("mark lead blocked", "channel", p.cfg.Name, "err", berr)
		}
	}
	return fmt.Errorf("messenger page %q: send: %w", p.cfg.Name, err)
}

// deliverPIN sends the pairing message, taking and passing the thread
// around it when the Page is a secondary receiver.
func (h *Hub) deliverPIN(ctx context.Context, p *page, key pairing.LeadKey, locale string, pin pairing.IssuedPIN) error {
	h.acquireThread(ctx, p, key)
	if err := h.send(ctx, p, key, pairing.SendPIN, h.pinMessage(p, locale, pin)); err != nil {
		return err
	}
	h.finishExchange(ctx, p, key)
	return nil
}

// pinMessage is the pairing message: a button template with the PIN and
// its validity, a button to the site's PIN page and, when the Page has a
// login URL, Messenger's Log In (account_link) button.
func (h *Hub) pinMessage(p *page, locale string, pin pairing.IssuedPIN) outMessage {
	minutes := max(int(math.Ceil(pin.ExpiresAt.Sub(h.clock.Now()).Minutes())), 1)
	text := h.text(locale, "messenger_pin", map[string]any{"PIN": pin.PIN, "Minutes": minutes})
	buttons := []button{{Type: "web_url", URL: pin.URL, Title: title(h.text(locale, "messenger_pin_button", nil))}}
	if p.cfg.LoginURL != "" {
		buttons = append(buttons, button{Type: "account_link", URL: p.cfg.LoginURL})
	}
	return outMessage{Attachment: &attachment{Type: "template", Payload: templatePayload{
		TemplateType: "button", Text: clipRunes(text, maxTextLen), Buttons: buttons,
	}}}
}

// textMessage is plain text with optional quick replies.
func textMessage(text string, replies ...quickReply) outMessage {
	return outMessage{Text: clipRunes(text, maxTextLen), QuickReplies: replies}
}

func (h *Hub) text(locale, key string, data any) string { return h.texts.Text(locale, key, data) }

// reply builds one quick reply from a text key and a payload.
func (h *Hub) reply(locale, key, payload string) quickReply {
	return quickReply{ContentType: "text", Title: title(h.text(locale, key, nil)), Payload: payload}
}

// menuReplies offers the three actions as quick replies.
func (h *Hub) menuReplies(locale string) []quickReply {
	return []quickReply{
		h.reply(locale, "messenger_menu_link", payloadLink),
		h.reply(locale, "messenger_menu_logout", payloadUnlink),
		h.reply(locale, "messenger_menu_status", payloadStatus),
	}
}

func title(s string) string { return clipRunes(s, maxTitleRunes) }

// clipRunes shortens s to n characters.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// --- handover protocol ---

// acquireThread asks for the thread when this Page is a secondary
// receiver that does not own it. The answer comes later as a
// pass_thread_control event; a send before it fails with
// ErrThreadControlled.
func (h *Hub) acquireThread(ctx context.Context, p *page, key pairing.LeadKey) {
	if h.role(ctx, p) != RoleSecondary {
		return
	}
	owner, err := h.threads.ThreadOwner(ctx, key)
	if err != nil {
		h.log.Error("thread owner", "channel", p.cfg.Name, "err", err)
		return
	}
	if owner == p.cfg.AppID {
		return
	}
	if err := p.graph.requestThreadControl(ctx, key.ExternalID, "pairingd: pairing request"); err != nil {
		h.log.Warn("request thread control", "channel", p.cfg.Name, "err", err)
	}
}

// finishExchange passes the thread to the target app after a pairing
// exchange when this Page is a secondary receiver.
func (h *Hub) finishExchange(ctx context.Context, p *page, key pairing.LeadKey) {
	if h.role(ctx, p) != RoleSecondary || p.cfg.TargetAppID == "" {
		return
	}
	if err := p.graph.passThreadControl(ctx, key.ExternalID, p.cfg.TargetAppID, "pairingd: pairing done"); err != nil {
		h.log.Warn("pass thread control", "channel", p.cfg.Name, "err", err)
		return
	}
	if err := h.threads.SetThreadOwner(ctx, key, p.cfg.TargetAppID); err != nil {
		h.log.Error("set thread owner", "channel", p.cfg.Name, "err", err)
	}
}
