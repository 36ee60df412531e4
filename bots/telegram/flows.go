package telegram

import (
	"cmp"
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// commands are the commands the bot answers; the others get the hint.
var commands = map[string]bool{
	"start": true, "login": true, "link": true, "status": true,
	"logout": true, "unlink": true, "help": true,
}

// deepLinkToken is what Telegram lets through in /start: 1-64 of
// A-Z a-z 0-9 _ -.
var deepLinkToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// conv is one private chat: its lead and the person's language.
type conv struct {
	b       *Bot
	chatID  int64
	key     pairing.LeadKey
	profile pairing.Profile
	locale  string
}

// enter is what every update a person caused in a private chat does
// first: record the lead (TouchLead creates it, refreshes the profile and
// clears the blocked flag) and pick the language.
func (b *Bot) enter(ctx context.Context, chatID int64, from *user) (*conv, error) {
	key := pairing.LeadKey{Channel: b.cfg.Name, ExternalID: strconv.FormatInt(chatID, 10)}
	prof := profileOf(from)
	lead, err := b.svc.TouchLead(ctx, key, prof)
	if err != nil {
		return nil, err
	}
	return &conv{b: b, chatID: chatID, key: key, profile: prof, locale: b.locale(cmp.Or(prof.Locale, lead.Profile.Locale))}, nil
}

// profileOf is the lead profile Telegram gives with an update: names,
// @username and language_code, bounded and without control characters.
func profileOf(u *user) pairing.Profile {
	if u == nil {
		return pairing.Profile{}
	}
	return pairing.Profile{
		FirstName: clean(u.FirstName, 128), LastName: clean(u.LastName, 128),
		Username: clean(u.Username, 64), Locale: clean(u.LanguageCode, 16),
	}
}

// clean drops control characters (PostgreSQL refuses NUL in text) and
// shortens s to at most n bytes on a rune boundary.
func clean(s string, n int) string {
	return channel.Clip(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s), n)
}

// say sends a catalog text. A blocked bot marks the lead blocked and a
// permanent refusal is logged: both are done with. A temporary failure is
// returned, so the update is handled again.
func (c *conv) say(ctx context.Context, key string, data any, kb *tgbotapi.InlineKeyboardMarkup) error {
	return c.settle(ctx, c.b.sendMessage(ctx, pairing.SendReply, outgoing{chatID: c.chatID, text: c.b.text(c.locale, key, data), keyboard: kb}))
}

func (c *conv) settle(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBlocked):
		c.b.markBlocked(ctx, c.key)
		return nil
	case IsPermanent(err):
		c.b.log.Warn("message not sent", "channel", c.b.cfg.Name, "err", err)
		return nil
	}
	return err
}

// done settles the answer to an update that changed something (a PIN
// issued, a link removed): a temporary failure is logged, not returned,
// since handling the update again would repeat the change.
func (c *conv) done(ctx context.Context, err error) error {
	if err = c.settle(ctx, err); err != nil {
		c.b.log.Warn("answer not sent; the person can ask again", "channel", c.b.cfg.Name, "err", err)
	}
	return nil
}

// parseCommand splits "/cmd@bot arg" into the lower-case command and its
// argument. ok is false for text that is not a command, and for a command
// addressed to another bot (@otherbot).
func (b *Bot) parseCommand(text string) (cmd, arg string, ok bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") {
		return "", "", false
	}
	head, rest := text, ""
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		head, rest = text[:i], strings.TrimSpace(text[i:])
	}
	name, at, addressed := strings.Cut(head[1:], "@")
	if addressed {
		if me := b.botUsername(); me != "" && !strings.EqualFold(at, me) {
			return "", "", false
		}
	}
	if name == "" {
		return "", "", false
	}
	return strings.ToLower(name), rest, true
}

func (b *Bot) onMessage(ctx context.Context, m *message) error {
	if m.Chat == nil {
		return nil
	}
	if m.Chat.Type != "private" {
		return b.onGroupMessage(ctx, m)
	}
	if m.From != nil && m.From.IsBot {
		return nil
	}
	c, err := b.enter(ctx, m.Chat.ID, m.From)
	if err != nil {
		return err
	}
	cmd, arg, ok := b.parseCommand(m.Text)
	if !ok {
		return c.say(ctx, "telegram_hint", nil, nil)
	}
	b.log.Debug("command", "channel", b.cfg.Name, "command", channel.Truncate(cmd, 32))
	switch cmd {
	case "start":
		if arg != "" {
			return c.deepLink(ctx, arg)
		}
		return c.say(ctx, "telegram_start", nil, nil)
	case "login", "link":
		return c.startPairing(ctx)
	case "status":
		return c.status(ctx)
	case "logout", "unlink":
		return c.askUnlink(ctx)
	case "help":
		return c.say(ctx, "telegram_help", nil, nil)
	}
	return c.say(ctx, "telegram_hint", nil, nil)
}

// onGroupMessage answers the bot's own commands in a group (or channel)
// with "talk to me privately", and ignores everything else. Groups have
// no lead: pairing is per private chat.
func (b *Bot) onGroupMessage(ctx context.Context, m *message) error {
	cmd, _, ok := b.parseCommand(m.Text)
	if !ok || !commands[cmd] || (m.From != nil && m.From.IsBot) {
		return nil
	}
	code := ""
	if m.From != nil {
		code = m.From.LanguageCode
	}
	locale := b.locale(code)
	out := outgoing{chatID: m.Chat.ID, text: b.text(locale, "telegram_private_only", nil), replyTo: m.MessageID}
	if me := b.botUsername(); me != "" {
		kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
			tgbotapi.NewInlineKeyboardButtonURL(b.text(locale, "telegram_private_button", nil), b.cfg.DeepLinkBase+me)))
		out.keyboard = &kb
	}
	err := b.sendMessage(ctx, pairing.SendReply, out)
	if err != nil && IsPermanent(err) {
		b.log.Debug("group answer not sent", "channel", b.cfg.Name, "err", err)
		return nil
	}
	return err
}

// startPairing issues a PIN and sends the pairing message, or asks the
// person to wait when they asked too recently.
func (c *conv) startPairing(ctx context.Context) error {
	pin, err := c.b.svc.IssuePIN(ctx, c.key, c.profile, pairing.IssueOptions{})
	var re *pairing.RetryError
	switch {
	case errors.As(err, &re):
		return c.say(ctx, "telegram_wait", map[string]any{"Seconds": seconds(re.RetryAfter)}, nil)
	case errors.Is(err, pairing.ErrRateLimited):
		return c.say(ctx, "telegram_wait", map[string]any{"Seconds": 1}, nil)
	case err != nil:
		return err
	}
	return c.done(ctx, c.b.sendPIN(ctx, c.chatID, c.locale, pin))
}

// seconds rounds up, so a person who waits that long is not early.
func seconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}

func (c *conv) status(ctx context.Context) error {
	st, err := c.b.svc.Status(ctx, c.key)
	switch {
	case err != nil:
		return err
	case !st.Linked:
		return c.say(ctx, "telegram_status_not_linked", nil, nil)
	case c.b.cfg.StatusDisplay == StatusUserID:
		return c.say(ctx, "telegram_status_linked_user", map[string]any{"UserID": esc(st.UserID)}, nil)
	}
	return c.say(ctx, "telegram_status_linked", nil, nil)
}

// askUnlink asks for a confirmation with two buttons, or says there is
// nothing to unlink.
func (c *conv) askUnlink(ctx context.Context) error {
	st, err := c.b.svc.Status(ctx, c.key)
	if err != nil {
		return err
	}
	if !st.Linked {
		return c.say(ctx, "telegram_not_linked", nil, nil)
	}
	return c.say(ctx, "telegram_unlink_confirm", nil, c.b.unlinkKeyboard(c.locale))
}

// onCallback handles a press on an inline button: the unlink
// confirmation. The query is always answered, and the question is
// replaced by the result.
func (b *Bot) onCallback(ctx context.Context, q *callbackQuery) error {
	inPrivate := q.Message == nil || q.Message.Chat == nil || q.Message.Chat.Type == "private"
	if !inPrivate || q.From == nil || q.From.IsBot {
		b.answerQuietly(ctx, q.ID)
		return nil
	}
	chatID := q.From.ID
	if q.Message != nil && q.Message.Chat != nil {
		chatID = q.Message.Chat.ID
	}
	c, err := b.enter(ctx, chatID, q.From)
	if err != nil {
		return err
	}
	if isDeepLinkData(q.Data) {
		return c.onDeepLinkPress(ctx, q)
	}
	if pairing.IsLinkNoticeToken(q.Data) {
		return c.onNoticePress(ctx, q)
	}
	var key string
	switch q.Data {
	case dataUnlinkYes:
		_, err := b.svc.UnlinkLead(ctx, c.key, pairing.ActorBot)
		switch {
		case errors.Is(err, pairing.ErrNotLinked):
			key = "telegram_not_linked"
		case err != nil:
			return err
		default:
			key = "telegram_unlinked"
		}
	case dataUnlinkNo:
		key = "telegram_unlink_cancelled"
	default:
		b.log.Debug("unknown callback data", "channel", b.cfg.Name, "data_len", len(q.Data))
		b.answerQuietly(ctx, q.ID)
		return nil
	}
	b.answerQuietly(ctx, q.ID)
	return c.done(ctx, c.replace(ctx, q.Message, key, nil))
}

// answerQuietly answers a callback query; a failure only costs the person
// a spinning button, so it is logged.
func (b *Bot) answerQuietly(ctx context.Context, id string) {
	if id == "" {
		return
	}
	if err := b.answerCallback(ctx, id, ""); err != nil {
		b.log.Debug("callback query not answered", "channel", b.cfg.Name, "err", err)
	}
}

// replace edits the message holding the buttons to show the result, and
// sends a new message when it cannot be edited.
func (c *conv) replace(ctx context.Context, m *message, key string, data any) error {
	text := c.b.text(c.locale, key, data)
	if m != nil && m.MessageID != 0 {
		err := c.b.editMessage(ctx, pairing.SendReply, c.chatID, m.MessageID, text)
		var ae *APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ae) && strings.Contains(ae.Description, "message is not modified"):
			return nil // a second press on the same button
		case !errors.Is(err, ErrRejected):
			return err
		}
	}
	return c.b.sendMessage(ctx, pairing.SendReply, outgoing{chatID: c.chatID, text: text})
}

// onMemberChange keeps the lead's blocked flag right: "kicked" is the
// person blocking the bot, "member" unblocking (or starting) it.
func (b *Bot) onMemberChange(ctx context.Context, m *chatMemberUpdated) error {
	if m.Chat.Type != "private" {
		b.log.Debug("chat member update of a group ignored", "channel", b.cfg.Name, "status", channel.Truncate(m.NewChatMember.Status, 16))
		return nil
	}
	var blocked bool
	switch m.NewChatMember.Status {
	case "kicked":
		blocked = true
	case "member":
	default:
		return nil
	}
	key := pairing.LeadKey{Channel: b.cfg.Name, ExternalID: strconv.FormatInt(m.Chat.ID, 10)}
	err := b.svc.SetBlocked(ctx, key, blocked)
	if errors.Is(err, pairing.ErrNotFound) {
		return nil // no lead yet: the person never wrote
	}
	if err == nil {
		b.log.Info("lead blocked flag updated", "channel", b.cfg.Name, "blocked", blocked)
	}
	return err
}

// onNoticePress is "This wasn't me: unlink" under a link notice: the
// token is checked against this chat and the link it reported.
func (c *conv) onNoticePress(ctx context.Context, q *callbackQuery) error {
	_, err := c.b.svc.UnlinkByNotice(ctx, c.key, q.Data)
	var key string
	switch {
	case err == nil:
		key = "link_notice_unlinked"
	case errors.Is(err, pairing.ErrNotLinked), errors.Is(err, pairing.ErrTokenExpired):
		key = "link_notice_stale"
	case errors.Is(err, pairing.ErrTokenUsed):
		key = "link_notice_used"
	case errors.Is(err, pairing.ErrTokenUnknown):
		c.b.answerQuietly(ctx, q.ID)
		return nil
	default:
		return err
	}
	c.b.answerQuietly(ctx, q.ID)
	return c.done(ctx, c.replace(ctx, q.Message, key, nil))
}
