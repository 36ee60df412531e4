package telegram

import (
	"context"
	"errors"
	"html"
	"math"
	"net"
	"net/url"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/pairingd/pairingd/pairing"
)

// outgoing is one message to a chat, its text in Telegram's HTML.
type outgoing struct {
	chatID   int64
	text     string
	keyboard *tgbotapi.InlineKeyboardMarkup
	replyTo  int64
}

// Every message the bot sends goes through sendMessage, editMessage or
// Deliver, and each reports it once to the observer with its kind
// (pairing.SendPIN, SendReply, SendNotification) and result. Answering a
// button press (answerCallbackQuery) and the setup calls are not messages
// and are not counted.

// observeSend reports one message sent to Telegram.
func (b *Bot) observeSend(kind string, err error) {
	b.obs.PlatformSend(b.cfg.Name, kind, pairing.SendResult(deliveryError(err)))
}

// sendMessage sends a message, waiting out short 429s. A text Telegram
// cannot parse as HTML (a broken operator override) is sent again as
// plain text rather than not at all: one message, counted once.
func (b *Bot) sendMessage(ctx context.Context, kind string, m outgoing) (err error) {
	defer func() { b.observeSend(kind, err) }()
	cfg := tgbotapi.NewMessage(m.chatID, m.text)
	cfg.ParseMode = tgbotapi.ModeHTML
	cfg.DisableWebPagePreview = true
	if m.keyboard != nil {
		cfg.ReplyMarkup = m.keyboard
	}
	if m.replyTo != 0 {
		cfg.ReplyToMessageID = int(m.replyTo)
		cfg.AllowSendingWithoutReply = true
	}
	_, err = b.requestRetrying(ctx, "sendMessage", cfg)
	if badHTML(err) {
		b.log.Warn("Telegram refused a text as HTML; sent as plain text: check the text templates", "channel", b.cfg.Name, "err", err)
		cfg.ParseMode, cfg.Text = "", plainText(m.text)
		_, err = b.requestRetrying(ctx, "sendMessage", cfg)
	}
	return err
}

// editMessage replaces a message's text and removes its inline keyboard.
func (b *Bot) editMessage(ctx context.Context, kind string, chatID, messageID int64, text string) (err error) {
	defer func() { b.observeSend(kind, err) }()
	cfg := tgbotapi.NewEditMessageText(chatID, int(messageID), text)
	cfg.ParseMode = tgbotapi.ModeHTML
	cfg.DisableWebPagePreview = true
	_, err = b.requestRetrying(ctx, "editMessageText", cfg)
	if badHTML(err) {
		cfg.ParseMode, cfg.Text = "", plainText(text)
		_, err = b.requestRetrying(ctx, "editMessageText", cfg)
	}
	return err
}

// answerCallback stops the button's progress indicator in the client.
func (b *Bot) answerCallback(ctx context.Context, id, text string) error {
	_, err := b.requestRetrying(ctx, "answerCallbackQuery", tgbotapi.NewCallback(id, text))
	return err
}

func badHTML(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 400 && strings.Contains(strings.ToLower(ae.Description), "can't parse entities")
}

// plainText is what a person would have read of an HTML text: tags
// dropped, entities decoded.
func plainText(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i+end+1:]
	}
	return strings.TrimSpace(html.UnescapeString(b.String()))
}

// text renders a catalog text. A text that renders empty (an override
// left blank) would be refused by Telegram: its key is sent instead.
func (b *Bot) text(locale, key string, data any) string {
	s := b.texts.Text(locale, key, data)
	if strings.TrimSpace(s) == "" {
		return "[" + key + "]"
	}
	return s
}

// esc makes a value safe inside an HTML text.
func esc(s string) string { return html.EscapeString(s) }

// pinMessage is the pairing message: the PIN, how long it is valid, the
// site link as text, and the link as a button when Telegram accepts the
// URL for one; with the one-tap sign-in button (Telegram's login_url)
// above the link when oneTap is set. The link and the PIN stay for
// clients that cannot use the button.
func (b *Bot) pinMessage(chatID int64, locale string, pin pairing.IssuedPIN, oneTap bool) outgoing {
	minutes := max(int(math.Ceil(pin.ExpiresAt.Sub(b.clock.Now()).Minutes())), 1)
	m := outgoing{chatID: chatID, text: b.text(locale, "telegram_pin", map[string]any{
		"PIN": esc(pin.PIN), "Minutes": minutes, "URL": esc(pin.URL),
	})}
	var rows [][]tgbotapi.InlineKeyboardButton
	if oneTap {
		rows = append(rows, tgbotapi.NewInlineKeyboardRow(tgbotapi.InlineKeyboardButton{
			Text: b.text(locale, "telegram_onetap_button", nil), LoginURL: &tgbotapi.LoginURL{URL: b.cfg.OneTapURL},
		}))
	}
	if buttonURLAllowed(pin.URL) {
		rows = append(rows, tgbotapi.NewInlineKeyboardRow(
			tgbotapi.NewInlineKeyboardButtonURL(b.text(locale, "telegram_pin_button", nil), pin.URL)))
	}
	if len(rows) > 0 {
		kb := tgbotapi.NewInlineKeyboardMarkup(rows...)
		m.keyboard = &kb
	}
	return m
}

// sendPIN sends the pairing message. When Telegram refuses it with the
// one-tap button (the bot's domain is not set with BotFather's
// /setdomain), it is sent again without, so /login keeps working.
func (b *Bot) sendPIN(ctx context.Context, chatID int64, locale string, pin pairing.IssuedPIN) error {
	err := b.sendMessage(ctx, pairing.SendPIN, b.pinMessage(chatID, locale, pin, b.cfg.OneTapURL != ""))
	if err == nil || b.cfg.OneTapURL == "" || !errors.Is(err, ErrRejected) || errors.Is(err, ErrBlocked) {
		return err
	}
	b.log.Warn("Telegram refused the one-tap sign-in button; sent the PIN without it: set the bot's domain with BotFather's /setdomain",
		"channel", b.cfg.Name, "err", err)
	return b.sendMessage(ctx, pairing.SendPIN, b.pinMessage(chatID, locale, pin, false))
}

// buttonURLAllowed tells whether Telegram takes url for an inline URL
// button: http or https to a public host. It refuses localhost and
// loopback or private addresses ("Wrong HTTP URL"), which a development
// pairing.link_url often is; the link then stays in the text only.
func buttonURLAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if ip := net.ParseIP(host); ip != nil {
		return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast())
	}
	// A public name has a dot: "intranet" or "localhost" are not public.
	return strings.Contains(host, ".") && host != "localhost" && !strings.HasSuffix(host, ".localhost")
}

// callback data of the unlink confirmation buttons.
const (
	dataUnlinkYes = "unlink:yes"
	dataUnlinkNo  = "unlink:no"
)

// unlinkKeyboard offers Yes / Cancel under the confirmation question.
func (b *Bot) unlinkKeyboard(locale string) *tgbotapi.InlineKeyboardMarkup {
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData(b.text(locale, "telegram_unlink_yes", nil), dataUnlinkYes),
		tgbotapi.NewInlineKeyboardButtonData(b.text(locale, "telegram_unlink_no", nil), dataUnlinkNo),
	))
	return &kb
}
