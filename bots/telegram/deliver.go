package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/pairingd/pairingd/pairing"
)

// Telegram's limits for a notification.
const (
	// MaxMessageText is sendMessage's text limit, in UTF-16 code units.
	MaxMessageText = 4096
	// DefaultRatePerSecond is the notification pace per bot: below
	// Telegram's ~30 messages per second, leaving room for the bot's own
	// answers.
	DefaultRatePerSecond = 25
	// DefaultPerChatInterval: Telegram allows about one message per second
	// to one chat.
	DefaultPerChatInterval = time.Second
)

// Limits are what a notification through a Telegram bot may hold.
func (b *Bot) Limits() pairing.ChannelLimits {
	return pairing.ChannelLimits{MaxText: MaxMessageText, UTF16: true}
}

// Pace is how fast the outbox worker sends through this bot.
func (b *Bot) Pace() pairing.Pace { return b.cfg.Pace }

// Deliver sends a notification: the text as plain
// text (no HTML: the site's text is shown as it is) and one button per
// row: a URL button, or a callback button for pairingd's own messages
// (the unlink button of a link notice). It makes one attempt: a 429 is returned with its retry_after
// for the outbox worker to honour, not waited out here. Errors are
// *pairing.DeliveryError; none holds the token.
func (b *Bot) Deliver(ctx context.Context, m pairing.OutboundMessage) error {
	if m.Lead.Channel != b.cfg.Name {
		return &pairing.DeliveryError{Permanent: true, Reason: pairing.ReasonRejected,
			Detail: fmt.Sprintf("the lead belongs to channel %q", m.Lead.Channel)}
	}
	chatID, err := strconv.ParseInt(m.Lead.ExternalID, 10, 64)
	if err != nil {
		return &pairing.DeliveryError{Permanent: true, Reason: pairing.ReasonRejected, Detail: "the lead's external id is not a Telegram chat id"}
	}
	cfg := tgbotapi.NewMessage(chatID, m.Text)
	if len(m.Buttons) > 0 {
		var rows [][]tgbotapi.InlineKeyboardButton
		for _, bt := range m.Buttons {
			btn := tgbotapi.NewInlineKeyboardButtonURL(bt.Text, bt.URL)
			if bt.Data != "" {
				btn = tgbotapi.NewInlineKeyboardButtonData(bt.Text, bt.Data)
			}
			rows = append(rows, tgbotapi.NewInlineKeyboardRow(btn))
		}
		cfg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(rows...)
	}
	_, err = b.request(ctx, "sendMessage", cfg)
	b.observeSend(pairing.SendNotification, err)
	return deliveryError(err)
}

// deliveryError maps a Bot API failure to the outbox's terms.
func deliveryError(err error) error {
	if err == nil {
		return nil
	}
	detail := err.Error()
	var ae *APIError
	if errors.As(err, &ae) {
		detail = ae.Description
		if ae.Code != 0 {
			detail = strconv.Itoa(ae.Code) + " " + ae.Description
		}
	}
	de := &pairing.DeliveryError{Reason: pairing.ReasonUnavailable, Detail: detail}
	switch {
	case errors.Is(err, ErrBlocked):
		de.Blocked, de.Permanent, de.Reason = true, true, pairing.ReasonBlocked
	case errors.Is(err, ErrRateLimited):
		de.Reason, de.RetryAfter = pairing.ReasonRateLimited, max(retryAfterOf(err), time.Second)
	case errors.Is(err, ErrRejected):
		de.Permanent, de.Reason = true, pairing.ReasonRejected
	case errors.Is(err, ErrTokenRefused):
		// Temporary: the messages wait (up to their max age) for the
		// operator to fix the token.
		de.Reason = pairing.ReasonTokenRefused
	}
	return de
}
