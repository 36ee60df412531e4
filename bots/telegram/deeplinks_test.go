package telegram

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/pairing"
)

// newLink is the site asking for a deep link (POST /v1/deep-links).
func (e *env) newLink(userID, name string) pairing.DeepLink {
	e.t.Helper()
	dl, err := e.svc.CreateDeepLink(e.ctx, pairing.DeepLinkRequest{UserID: userID, Channel: chName, DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return dl
}

// press presses a button under msg and returns the message as the chat
// then shows it (edited, or a new one).
func (e *env) press(chatID int64, msg tgfake.SentMessage, data string) tgfake.SentMessage {
	e.t.Helper()
	before := len(e.tg.Sent())
	e.tg.UserPresses(chatID, msg.MessageID, data, "en")
	e.idle()
	got := e.tg.Sent()[before:]
	if len(got) != 1 {
		e.t.Fatalf("press %q: want one change, got %+v", data, got)
	}
	return got[0]
}

func TestDeepLinkConfirmLinks(t *testing.T) {
	e := newEnv(t)
	e.run()
	dl := e.newLink("site-7", "Ann <Shop> & Co")
	if dl.URL != "https://t.me/pairing_test_bot?start="+dl.Token {
		t.Fatalf("url %q", dl.URL)
	}

	ask := e.reply(5001, "/start "+dl.Token, "en")
	if got, want := ask.Plain(), e.txt("en", "telegram_deeplink_confirm", map[string]any{"Name": esc("Ann <Shop> & Co")}); got != want || !strings.Contains(got, "Ann <Shop> & Co") {
		t.Fatalf("question %q, want %q", got, want)
	}
	if err := tgfake.CheckHTML(ask.Text); err != nil || strings.Contains(ask.Text, "<Shop>") {
		t.Fatalf("display name not escaped: %q %v", ask.Text, err)
	}
	b := ask.Buttons()
	if len(b) != 2 || b[0].CallbackData == nil || *b[0].CallbackData != dataDeepLinkYes+dl.Token || b[1].CallbackData == nil || *b[1].CallbackData != dataDeepLinkNo+":"+dl.Token {
		t.Fatalf("buttons %+v", b)
	}
	if b[0].Text != e.txt("en", "telegram_deeplink_yes", nil) {
		t.Fatalf("confirm label %q", b[0].Text)
	}
	// Nothing is linked before the press.
	if st := e.status(5001); st.Linked {
		t.Fatalf("linked before confirmation: %+v", st)
	}

	done := e.press(5001, ask, *b[0].CallbackData)
	if done.Method != "editMessageText" || done.MessageID != ask.MessageID || done.Keyboard != nil || done.Plain() != e.txt("en", "telegram_linked", nil) {
		t.Fatalf("after confirm: %+v", done)
	}
	if st := e.status(5001); st.UserID != "site-7" {
		t.Fatalf("not linked: %+v", st)
	}
	if n := len(e.tg.CallbackAnswers()); n != 1 {
		t.Fatalf("%d callback queries answered", n)
	}
	created := 0
	for _, ev := range e.siteEvents() {
		if ev.Type == pairing.EventLinkCreated && ev.UserID == "site-7" {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d link.created events", created)
	}

	// Used: a second press, and the link opened in another chat.
	if got := e.press(5001, ask, *b[0].CallbackData); got.Plain() != e.txt("en", "telegram_deeplink_used", nil) {
		t.Fatalf("second press: %q", got.Plain())
	}
	if got := e.reply(5002, "/start "+dl.Token, "en").Plain(); got != e.txt("en", "telegram_deeplink_used", nil) {
		t.Fatalf("used link in another chat: %q", got)
	}
	if e.status(5002).Linked {
		t.Fatal("used token linked another chat")
	}
	if strings.Contains(e.logs.String(), dl.Token) {
		t.Fatal("token logged")
	}
	e.noTokenStored(dl.Token, 4) // two /start, two presses
}

// noTokenStored checks the stored updates: none holds token in the clear,
// and at least want hold it sealed.
func (e *env) noTokenStored(token string, want int) {
	e.t.Helper()
	payloads, err := e.store.InboundPayloads(e.ctx, "telegram:"+chName)
	if err != nil {
		e.t.Fatal(err)
	}
	sealed := 0
	for _, p := range payloads {
		if strings.Contains(string(p), token) {
			e.t.Fatalf("a stored update holds the token: %s", p)
		}
		if strings.Contains(string(p), "pzs_") {
			sealed++
		}
	}
	if sealed < want {
		e.t.Fatalf("%d of %d stored updates hold a sealed token, want %d", sealed, len(payloads), want)
	}
}

func TestDeepLinkNeutralTextAndCancel(t *testing.T) {
	e := newEnv(t)
	e.run()
	dl := e.newLink("site-7", "")
	ask := e.reply(5001, "/start "+dl.Token, "ru")
	if got := ask.Plain(); got != e.txt("ru", "telegram_deeplink_confirm_neutral", nil) {
		t.Fatalf("neutral question %q", got)
	}
	if got := e.press(5001, ask, dataDeepLinkNo); got.Plain() != e.txt("en", "telegram_deeplink_cancelled", nil) || got.Keyboard != nil {
		t.Fatalf("after cancel: %+v", got)
	}
	if e.status(5001).Linked {
		t.Fatal("cancel linked")
	}
	// Cancel spends nothing: the link still works.
	if _, err := e.svc.PreviewDeepLink(e.ctx, key(5001), dl.Token); err != nil {
		t.Fatalf("token after cancel: %v", err)
	}
}

func TestDeepLinkExpiredAndUnknown(t *testing.T) {
	e := newEnv(t)
	e.run()
	// Expired before it is opened.
	old := e.newLink("site-7", "Ann")
	e.clock.Advance(16 * time.Minute)
	if got := e.reply(5001, "/start "+old.Token, "en").Plain(); got != e.txt("en", "telegram_deeplink_expired", nil) {
		t.Fatalf("expired link: %q", got)
	}
	// Expired between the question and the press.
	dl := e.newLink("site-7", "Ann")
	ask := e.reply(5001, "/start "+dl.Token, "en")
	e.clock.Advance(15 * time.Minute)
	if got := e.press(5001, ask, *ask.Buttons()[0].CallbackData); got.Plain() != e.txt("en", "telegram_deeplink_expired", nil) {
		t.Fatalf("late press: %q", got.Plain())
	}
	if e.status(5001).Linked {
		t.Fatal("expired token linked")
	}
	for _, tok := range []string{"pdl_" + strings.Repeat("x", 43), "foo", strings.Repeat("a", 64)} {
		if got := e.reply(5001, "/start "+tok, "en").Plain(); got != e.txt("en", "telegram_deeplink_unknown", nil) {
			t.Fatalf("%s: %q", tok, got)
		}
	}
	// A forged press carrying a token never shown is unknown too.
	if got := e.press(5001, ask, dataDeepLinkYes+"pdl_forged"); got.Plain() != e.txt("en", "telegram_deeplink_unknown", nil) {
		t.Fatalf("forged press: %q", got.Plain())
	}
}

func TestDeepLinkConflictsInChat(t *testing.T) {
	e := newEnv(t)
	e.run()
	// The chat is linked to another site user: conflict, nothing changes.
	e.send(5001, "/help", "en")
	if _, err := e.svc.LinkLead(e.ctx, key(5001), "site-old"); err != nil {
		t.Fatal(err)
	}
	dl := e.newLink("site-7", "Ann")
	ask := e.reply(5001, "/start "+dl.Token, "en")
	if got := e.press(5001, ask, *ask.Buttons()[0].CallbackData); got.Plain() != e.txt("en", "telegram_conflict_chat", nil) {
		t.Fatalf("conflict: %q", got.Plain())
	}
	if st := e.status(5001); st.UserID != "site-old" {
		t.Fatalf("link changed: %+v", st)
	}
	// The site user is linked to another chat of this bot.
	ask2 := e.reply(5002, "/start "+dl.Token, "en")
	e.send(5003, "/help", "en")
	if _, err := e.svc.LinkLead(e.ctx, key(5003), "site-7"); err != nil {
		t.Fatal(err)
	}
	if got := e.press(5002, ask2, *ask2.Buttons()[0].CallbackData); got.Plain() != e.txt("en", "telegram_conflict_account", nil) {
		t.Fatalf("account conflict: %q", got.Plain())
	}
	if e.status(5002).Linked {
		t.Fatal("conflict linked")
	}
	// Already linked to that user: said so.
	ask3 := e.reply(5003, "/start "+dl.Token, "en")
	if got := e.press(5003, ask3, *ask3.Buttons()[0].CallbackData); got.Plain() != e.txt("en", "telegram_deeplink_already_linked", nil) {
		t.Fatalf("already linked: %q", got.Plain())
	}
}

func TestDeepLinkURLNeedsUsername(t *testing.T) {
	e := newEnv(t)
	// Not started: getMe has not told the username yet.
	if _, err := e.bot.DeepLinkURL("pdl_x"); err == nil {
		t.Fatal("URL without a username")
	}
	_, err := e.svc.CreateDeepLink(e.ctx, pairing.DeepLinkRequest{UserID: "u", Channel: chName})
	if !errors.Is(err, pairing.ErrChannelUnavailable) {
		t.Fatalf("want channel unavailable, got %v", err)
	}
	e.run()
	if u, err := e.bot.DeepLinkURL("pdl_x"); err != nil || u != "https://t.me/pairing_test_bot?start=pdl_x" {
		t.Fatalf("%q %v", u, err)
	}
}

// A well-formed token the service never issued: unknown, both when opened
// and when confirmed.
func TestDeepLinkNotIssued(t *testing.T) {
	e := newEnv(t)
	e.run()
	dl := e.newLink("site-7", "")
	last := "A"
	if strings.HasSuffix(dl.Token, last) {
		last = "B"
	}
	dl.Token = dl.Token[:len(dl.Token)-1] + last
	if got := e.reply(5001, "/start "+dl.Token, "en").Plain(); got != e.txt("en", "telegram_deeplink_unknown", nil) {
		t.Fatalf("%q", got)
	}
	if got := e.press(5001, tgfake.SentMessage{}, dataDeepLinkYes+dl.Token); got.Plain() != e.txt("en", "telegram_deeplink_unknown", nil) {
		t.Fatalf("press: %q", got.Plain())
	}
}

// deep_link_base moves the links off t.me (pairingd demo points them at
// its web chat); a base that cannot take "<bot>?start=" is refused.
func TestDeepLinkBase(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.DeepLinkBase = "http://127.0.0.1:9999/" }))
	e.run()
	if u, err := e.bot.DeepLinkURL("pdl_x"); err != nil || u != "http://127.0.0.1:9999/pairing_test_bot?start=pdl_x" {
		t.Fatalf("%q %v", u, err)
	}
	for _, bad := range []string{"ftp://t.me/", "https://t.me", "https://t.me/?a=1", "/relative/"} {
		c := Config{Name: "tg", Token: token, DeepLinkBase: bad}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "deep_link_base") {
			t.Errorf("deep_link_base %q: %v", bad, err)
		}
	}
	if err := (Config{Name: "tg", Token: token}).Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
}
