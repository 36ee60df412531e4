package telegram

import (
	"context"
	"errors"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/pairingd/pairingd/pairing"
)

// Site-initiated pairing: https://t.me/<bot>?start=<token>. The bot shows
// which site account the link is for with Confirm / Cancel buttons; only
// Confirm spends the token and links. Tokens are never logged.

// Callback data of the deep-link confirmation: the token rides in the
// buttons (Telegram allows 64 bytes of data; tokens are 47). Cancel
// carries it too so a sign-in can be declined; a bare "dl:no" (older
// messages) still cancels.
const (
	dataDeepLinkYes = "dl:ok:"
	dataDeepLinkNo  = "dl:no"
)

// DeepLinkURL is the link that opens this bot with token as the /start
// parameter. It fails until the bot has learnt its username from getMe.
func (b *Bot) DeepLinkURL(token string) (string, error) {
	me := b.botUsername()
	if me == "" {
		return "", errors.New("the bot's username is not known yet (getMe has not succeeded since start)")
	}
	return b.cfg.DeepLinkBase + me + "?start=" + token, nil
}

func isDeepLinkData(data string) bool {
	return data == dataDeepLinkNo || strings.HasPrefix(data, dataDeepLinkYes) || strings.HasPrefix(data, dataDeepLinkNo+":")
}

// deepLink answers /start <token>: the confirmation question, or why the
// link cannot be used.
func (c *conv) deepLink(ctx context.Context, token string) error {
	if !deepLinkToken.MatchString(token) || len(dataDeepLinkYes)+len(token) > 64 {
		return c.say(ctx, "telegram_deeplink_unknown", nil, nil)
	}
	pv, err := c.b.svc.PreviewDeepLink(ctx, c.key, token)
	if err != nil {
		key, ok := deepLinkRefusal(err)
		if !ok {
			return err
		}
		return c.say(ctx, key, nil, nil)
	}
	text, data := "telegram_deeplink_confirm_neutral", any(nil)
	yes, no := "telegram_deeplink_yes", "telegram_deeplink_no"
	if pv.SignIn != nil {
		text, data = "telegram_signin_confirm", map[string]any{"Site": esc(pv.SignIn.SiteName), "Code": esc(pv.SignIn.MatchCode)}
		yes, no = "telegram_signin_yes", "telegram_signin_no"
	} else if pv.DisplayName != "" {
		text, data = "telegram_deeplink_confirm", map[string]any{"Name": esc(pv.DisplayName)}
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData(c.b.text(c.locale, yes, nil), dataDeepLinkYes+token),
		tgbotapi.NewInlineKeyboardButtonData(c.b.text(c.locale, no, nil), dataDeepLinkNo+":"+token),
	))
	return c.say(ctx, text, data, &kb)
}

// onDeepLinkPress handles Confirm or Cancel under the question: the query
// is answered, and the question is replaced by the result.
func (c *conv) onDeepLinkPress(ctx context.Context, q *callbackQuery) error {
	c.b.answerQuietly(ctx, q.ID)
	key, data := "telegram_deeplink_cancelled", any(nil)
	if token, ok := strings.CutPrefix(q.Data, dataDeepLinkYes); ok {
		var err error
		if key, data, err = c.confirmDeepLink(ctx, token); err != nil {
			return err
		}
	} else if token, ok := strings.CutPrefix(q.Data, dataDeepLinkNo+":"); ok && deepLinkToken.MatchString(token) {
		switch err := c.b.svc.DeclineDeepLink(ctx, c.key, token); {
		case err == nil && strings.HasPrefix(token, "psi_"):
			key = "telegram_signin_cancelled"
		case err != nil:
			if refusal, ok := deepLinkRefusal(err); ok {
				key = refusal
			} else {
				return err
			}
		}
	}
	return c.done(ctx, c.replace(ctx, q.Message, key, data))
}

// confirmDeepLink spends the token and returns the text that says what
// happened; an error means "try the update again".
func (c *conv) confirmDeepLink(ctx context.Context, token string) (string, any, error) {
	if !deepLinkToken.MatchString(token) {
		return "telegram_deeplink_unknown", nil, nil
	}
	var site string
	if pv, err := c.b.svc.PreviewDeepLink(ctx, c.key, token); err == nil && pv.SignIn != nil {
		site = pv.SignIn.SiteName
	}
	res, err := c.b.svc.RedeemDeepLink(ctx, c.key, token)
	switch {
	case err == nil && res.Outcome == pairing.OutcomeSignedIn:
		c.b.log.Info("sign-in confirmed in the chat", "channel", c.b.cfg.Name)
		return "telegram_signin_done", map[string]any{"Site": esc(site)}, nil
	case err == nil && res.Outcome == pairing.OutcomeAlreadyLinked:
		return "telegram_deeplink_already_linked", nil, nil
	case err == nil:
		c.b.log.Info("chat linked by a deep link", "channel", c.b.cfg.Name)
		return "telegram_linked", nil, nil
	}
	if key, ok := deepLinkRefusal(err); ok {
		return key, nil, nil
	}
	return "", nil, err
}

// deepLinkRefusal maps a refusal to its text; ok is false for errors that
// are worth a retry (the database is down ...).
func deepLinkRefusal(err error) (string, bool) {
	var ce *pairing.ConflictError
	switch {
	case errors.Is(err, pairing.ErrTokenExpired):
		return "telegram_deeplink_expired", true
	case errors.Is(err, pairing.ErrTokenUsed):
		return "telegram_deeplink_used", true
	case errors.Is(err, pairing.ErrTokenUnknown), errors.Is(err, pairing.ErrNotFound), errors.Is(err, pairing.ErrInvalid):
		return "telegram_deeplink_unknown", true
	case errors.As(err, &ce) && ce.Conflict.Kind == pairing.ConflictBotLinkedElsewhere:
		return "telegram_conflict_chat", true
	case errors.Is(err, pairing.ErrConflict):
		return "telegram_conflict_account", true
	}
	return "", false
}
