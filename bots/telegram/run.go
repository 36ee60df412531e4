package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"golang.org/x/text/language"

	"github.com/pairingd/pairingd/pairing"
)

// Run connects the bot and takes updates until ctx ends, then returns
// nil. It calls getMe, registers the command list, and then either polls
// (deleteWebhook, then getUpdates in a loop) or registers the webhook
// (setWebhook with the secret token) and waits. A failing call (Telegram
// unreachable, a wrong token) is retried with backoff and reported by
// Health and the log: Run never gives up while ctx lives, so the rest of
// the service keeps serving.
func (b *Bot) Run(ctx context.Context) error {
	if b.ownClient {
		defer b.http.CloseIdleConnections()
	}
	if err := b.until(ctx, "getMe", b.getMe); err != nil {
		return nil
	}
	b.setCommands(ctx)
	if b.cfg.Mode == ModeWebhook {
		b.serveWebhook(ctx)
		return nil
	}
	b.poll(ctx)
	return nil
}

// until runs fn until it succeeds or ctx ends, waiting between failures
// the failure's retry_after or an exponential backoff. Failures are
// logged and kept for Health; a success clears Health.
func (b *Bot) until(ctx context.Context, what string, fn func(context.Context) error) error {
	delay := b.backoffMin
	for {
		err := fn(ctx)
		if err == nil {
			b.setHealth(nil)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := delay
		if ra := retryAfterOf(err); ra > 0 {
			wait = ra
		} else {
			delay = min(delay*2, b.backoffMax)
		}
		b.fail(what, err, wait)
		if b.sleep(ctx, wait) != nil {
			return ctx.Err()
		}
	}
}

// fail records and logs a failed call of the update machinery.
func (b *Bot) fail(what string, err error, wait time.Duration) {
	b.setHealth(err)
	level := slog.LevelWarn
	if errors.Is(err, ErrTokenRefused) || errors.Is(err, ErrConflict) {
		level = slog.LevelError // needs the operator
	}
	b.log.Log(context.Background(), level, "telegram bot cannot take updates",
		"channel", b.cfg.Name, "call", what, "retry_in", wait.String(), "err", err)
}

func (b *Bot) getMe(ctx context.Context) error {
	res, err := b.call(ctx, "getMe", nil, 0)
	if err != nil {
		return err
	}
	var me struct {
		Username string `json:"username"`
	}
	if err := json.Unmarshal(res, &me); err != nil || me.Username == "" {
		return &APIError{Method: "getMe", Description: "the answer is not a bot", kind: ErrUnavailable}
	}
	b.mu.Lock()
	b.username = me.Username
	b.mu.Unlock()
	b.log.Info("telegram bot connected", "channel", b.cfg.Name, "bot", "@"+me.Username, "mode", b.cfg.Mode)
	return nil
}

// setCommands registers the command menu: the default list in the
// fallback language, then one list per shipped language (Telegram picks
// by the person's language_code, two letters). Failures are logged: the
// commands work without a menu.
func (b *Bot) setCommands(ctx context.Context) {
	set := func(lang, locale string) {
		cfg := tgbotapi.SetMyCommandsConfig{Commands: b.commandList(locale), LanguageCode: lang}
		if _, err := b.requestRetrying(ctx, "setMyCommands", cfg); err != nil && ctx.Err() == nil {
			b.log.Warn("command menu not set", "channel", b.cfg.Name, "language", lang, "err", err)
		}
	}
	set("", b.cfg.FallbackLocale)
	seen := map[string]bool{}
	for _, loc := range b.texts.Locales() {
		lang := twoLetter(loc)
		if lang == "" || seen[lang] {
			continue
		}
		seen[lang] = true
		set(lang, loc)
	}
}

func (b *Bot) commandList(locale string) []tgbotapi.BotCommand {
	var out []tgbotapi.BotCommand
	for _, name := range []string{"login", "status", "logout", "help"} {
		desc := clean(plainText(b.text(locale, "telegram_cmd_"+name, nil)), 1024)
		if r := []rune(desc); len(r) > 256 {
			desc = string(r[:256])
		}
		out = append(out, tgbotapi.BotCommand{Command: name, Description: desc})
	}
	return out
}

// twoLetter is the ISO 639-1 code of a locale ("zh-TW" -> "zh"), "" when
// it has none.
func twoLetter(loc string) string {
	tag, err := language.Parse(loc)
	if err != nil {
		return ""
	}
	base, _ := tag.Base()
	if s := base.String(); len(s) == 2 {
		return s
	}
	return ""
}

// --- polling ---

// poll takes updates with getUpdates until ctx ends and stores each batch
// in the inbound intake, like a webhook delivery; the intake's worker
// handles them (one chat's updates in order, retries with backoff). The
// offset confirms a batch only once it is stored, so a failure to store
// asks Telegram for the same updates again after a backoff. Duplicates (a
// restart before the confirmation) are caught by the intake's unique
// update_id.
func (b *Bot) poll(ctx context.Context) {
	if b.until(ctx, "deleteWebhook", b.deleteWebhook) != nil {
		return
	}
	offset := int64(0)
	for ctx.Err() == nil {
		var ups []polled
		err := b.until(ctx, "getUpdates", func(ctx context.Context) (err error) {
			if ups, err = b.getUpdates(ctx, offset); err != nil {
				return err
			}
			return b.store(ctx, ups)
		})
		if err != nil {
			return
		}
		if len(ups) > 0 {
			offset = ups[len(ups)-1].id + 1
		}
	}
}

// polled is one element of a getUpdates result: its id, and the update
// with its raw body when it could be decoded.
type polled struct {
	id   int64
	u    *update
	body []byte
}

func (b *Bot) getUpdates(ctx context.Context, offset int64) ([]polled, error) {
	params := tgbotapi.Params{
		"timeout":         strconv.Itoa(int(b.cfg.PollTimeout / time.Second)),
		"allowed_updates": allowedUpdates,
	}
	if offset != 0 {
		params["offset"] = strconv.FormatInt(offset, 10)
	}
	res, err := b.call(ctx, "getUpdates", params, b.cfg.PollTimeout+pollSlack)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(res, &raws); err != nil {
		return nil, &APIError{Method: "getUpdates", Description: "the result is not a list of updates", kind: ErrUnavailable}
	}
	out := make([]polled, 0, len(raws))
	for _, raw := range raws {
		u, err := parseUpdate(raw)
		if err == nil {
			out = append(out, polled{id: u.id(), u: &u, body: raw})
			continue
		}
		var idOnly struct {
			ID *int64 `json:"update_id"`
		}
		if json.Unmarshal(raw, &idOnly) != nil || idOnly.ID == nil {
			b.log.Error("update without an update_id skipped", "channel", b.cfg.Name, "err", err)
			continue
		}
		b.log.Warn("undecodable update skipped", "channel", b.cfg.Name, "update_id", *idOnly.ID, "err", err)
		out = append(out, polled{id: *idOnly.ID})
	}
	return out, nil
}

// store puts a getUpdates batch in the intake in one transaction. An
// undecodable update is only confirmed (skipped), as it can never be
// handled.
func (b *Bot) store(ctx context.Context, batch []polled) error {
	evs := make([]pairing.InboundEvent, 0, len(batch))
	for _, p := range batch {
		if p.u != nil {
			evs = append(evs, b.inboundEvent(*p.u, p.body))
		}
	}
	if err := b.intake.Accept(ctx, evs); err != nil {
		return fmt.Errorf("storing polled updates: %w", err)
	}
	return nil
}

func (b *Bot) deleteWebhook(ctx context.Context) error {
	_, err := b.call(ctx, "deleteWebhook", tgbotapi.Params{"drop_pending_updates": "false"}, 0)
	return err
}

// --- webhook ---

// serveWebhook registers the webhook and waits for ctx to end, checking
// now and then whether Telegram reports delivery errors.
func (b *Bot) serveWebhook(ctx context.Context) {
	if b.until(ctx, "setWebhook", b.setWebhook) != nil {
		return
	}
	t := time.NewTicker(b.infoEvery)
	defer t.Stop()
	var lastReported int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lastReported = b.checkWebhook(ctx, lastReported)
		}
	}
}

// webhookURL is where Telegram posts updates.
func (b *Bot) webhookURL() string {
	return strings.TrimRight(b.cfg.PublicURL, "/") + WebhookPath(b.cfg.Name)
}

func (b *Bot) setWebhook(ctx context.Context) error {
	_, err := b.call(ctx, "setWebhook", tgbotapi.Params{
		"url":             b.webhookURL(),
		"secret_token":    b.secret,
		"allowed_updates": allowedUpdates,
	}, 0)
	if err == nil {
		b.log.Info("telegram webhook registered", "channel", b.cfg.Name, "url", b.webhookURL())
	}
	return err
}

// checkWebhook logs Telegram's last delivery error when it is new: a
// webhook Telegram cannot reach (TLS, DNS, wrong secret) shows only
// there.
func (b *Bot) checkWebhook(ctx context.Context, lastReported int64) int64 {
	res, err := b.call(ctx, "getWebhookInfo", nil, 0)
	if err != nil {
		b.log.Debug("webhook info not available", "channel", b.cfg.Name, "err", err)
		return lastReported
	}
	var info struct {
		URL              string `json:"url"`
		Pending          int    `json:"pending_update_count"`
		LastErrorDate    int64  `json:"last_error_date"`
		LastErrorMessage string `json:"last_error_message"`
	}
	if json.Unmarshal(res, &info) != nil {
		return lastReported
	}
	if info.URL != b.webhookURL() {
		b.log.Warn("the bot's webhook points elsewhere; registering it again", "channel", b.cfg.Name)
		if err := b.setWebhook(ctx); err != nil {
			b.log.Warn("webhook not registered", "channel", b.cfg.Name, "err", err)
		}
	}
	if info.LastErrorDate > lastReported {
		b.log.Warn("Telegram reports webhook delivery errors", "channel", b.cfg.Name,
			"last_error", redact(info.LastErrorMessage, b.cfg.Token), "at", time.Unix(info.LastErrorDate, 0).UTC(), "pending", info.Pending)
		return info.LastErrorDate
	}
	return lastReported
}
