package telegram

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

func TestLoginSendsPINThatAuthorizes(t *testing.T) {
	e := newEnv(t)
	e.run()
	m := e.reply(5001, "/login", "en")
	if m.ParseMode != "HTML" || !strings.Contains(m.Plain(), "valid for 10 minutes.") || !strings.Contains(m.Text, "<code>") {
		t.Fatalf("pairing message %q (%s)", m.Text, m.ParseMode)
	}
	if b := m.Buttons(); len(b) != 1 || b[0].Text != "Open the website" || b[0].URL == nil || !strings.HasPrefix(*b[0].URL, "https://shop.example/pair?buid=") {
		t.Fatalf("buttons %+v", m.Buttons())
	}
	pin, buid := pinOf(t, m)
	res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: buid, PIN: pin})
	if err != nil || res.Outcome != pairing.OutcomeRegister || res.Grant == nil {
		t.Fatalf("authorize with the sent PIN: %+v %v", res, err)
	}
	if p := res.Lead.Profile; p.FirstName != "User5001" || p.Username != "user5001" || p.Locale != "en" {
		t.Fatalf("profile not recorded: %+v", p)
	}
	// /link is the same command, and /login@<this bot> too.
	e.clock.Advance(time.Minute)
	pinOf(t, e.reply(5002, "/link", "en"))
	pinOf(t, e.reply(5003, "/login@pairing_test_bot", "en"))
	if got := e.send(5004, "/login@some_other_bot", "en"); len(got) != 1 || got[0].Plain() != e.txt("en", "telegram_hint", nil) {
		t.Fatalf("a command for another bot: %+v", got)
	}
}

func TestSecondLoginKillsTheFirst(t *testing.T) {
	e := newEnv(t)
	e.run()
	pin1, buid1 := pinOf(t, e.reply(5001, "/login", "en"))
	e.clock.Advance(11 * time.Second)
	pin2, buid2 := pinOf(t, e.reply(5001, "/login", "en"))
	if pin1 == pin2 && buid1 == buid2 || buid1 == buid2 {
		t.Fatal("the second /login gave the same credentials")
	}
	_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: buid1, PIN: pin1, UserID: "user-1"})
	wantErr(t, err, pairing.ErrBUIDUnknown)
	res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: buid2, PIN: pin2, UserID: "user-1"})
	if err != nil || res.Outcome != pairing.OutcomeLinked {
		t.Fatalf("fresh PIN: %+v %v", res, err)
	}
	// The site user logs in through the bot: match.
	e.clock.Advance(11 * time.Second)
	pin3, buid3 := pinOf(t, e.reply(5001, "/login", "en"))
	res, err = e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: buid3, PIN: pin3})
	if err != nil || res.Outcome != pairing.OutcomeMatch || res.UserID != "user-1" {
		t.Fatalf("match: %+v %v", res, err)
	}
}

func TestLoginTooSoonSaysWait(t *testing.T) {
	e := newEnv(t)
	e.run()
	pinOf(t, e.reply(5001, "/login", "en"))
	e.clock.Advance(3 * time.Second)
	if got := e.reply(5001, "/login", "en").Plain(); got != e.txt("en", "telegram_wait", map[string]any{"Seconds": 7}) || !strings.Contains(got, "7 seconds") {
		t.Fatalf("wait text %q", got)
	}
	e.clock.Advance(2 * time.Second)
	if got := e.reply(5001, "/login", "ru").Plain(); !strings.Contains(got, "5 секунд,") {
		t.Fatalf("Russian wait text %q", got)
	}
	e.clock.Advance(5 * time.Second)
	pinOf(t, e.reply(5001, "/login", "en"))
}

func TestStatusDisplays(t *testing.T) {
	for _, display := range []string{StatusLinked, StatusUserID} {
		t.Run(display, func(t *testing.T) {
			e := newEnv(t, withConfig(func(c *Config) { c.StatusDisplay = display }))
			e.run()
			if got := e.reply(5001, "/status", "en").Plain(); got != e.txt("en", "telegram_status_not_linked", nil) {
				t.Fatalf("not linked: %q", got)
			}
			// A user id with HTML's special characters must reach the chat as is.
			const userID = "u<1>&\"x\""
			if _, err := e.svc.LinkLead(e.ctx, key(5001), userID); err != nil {
				t.Fatal(err)
			}
			got := e.reply(5001, "/status", "en").Plain()
			switch display {
			case StatusLinked:
				if got != e.txt("en", "telegram_status_linked", nil) || strings.Contains(got, "u<1>") {
					t.Fatalf("linked: %q", got)
				}
			case StatusUserID:
				if !strings.Contains(got, "account "+userID+" on our website") {
					t.Fatalf("linked with user id: %q", got)
				}
			}
		})
	}
}

func TestLogoutAsksThenUnlinks(t *testing.T) {
	e := newEnv(t)
	e.run()
	if got := e.reply(5001, "/logout", "en").Plain(); got != e.txt("en", "telegram_not_linked", nil) {
		t.Fatalf("logout while not linked: %q", got)
	}
	if _, err := e.svc.LinkLead(e.ctx, key(5001), "user-1"); err != nil {
		t.Fatal(err)
	}
	ask := e.reply(5001, "/unlink", "en")
	b := ask.Buttons()
	if ask.Plain() != e.txt("en", "telegram_unlink_confirm", nil) || len(b) != 2 || *b[0].CallbackData != dataUnlinkYes || *b[1].CallbackData != dataUnlinkNo {
		t.Fatalf("confirmation %+v", ask)
	}

	// Cancel: the question becomes "nothing changed", the link stays.
	e.tg.UserPresses(5001, ask.MessageID, dataUnlinkNo, "en")
	e.idle()
	last := e.tg.Sent()[len(e.tg.Sent())-1]
	if last.Method != "editMessageText" || last.MessageID != ask.MessageID || last.Keyboard != nil || last.Plain() != e.txt("en", "telegram_unlink_cancelled", nil) {
		t.Fatalf("after cancel: %+v", last)
	}
	if !e.status(5001).Linked {
		t.Fatal("cancel unlinked")
	}

	// Yes: unlinked, the site gets link.deleted by the bot.
	ask = e.reply(5001, "/logout", "en")
	e.tg.UserPresses(5001, ask.MessageID, dataUnlinkYes, "en")
	e.idle()
	last = e.tg.Sent()[len(e.tg.Sent())-1]
	if last.Method != "editMessageText" || last.Plain() != e.txt("en", "telegram_unlinked", nil) {
		t.Fatalf("after yes: %+v", last)
	}
	if e.status(5001).Linked {
		t.Fatal("still linked")
	}
	if n := len(e.tg.CallbackAnswers()); n != 2 {
		t.Fatalf("%d callback queries answered, want 2", n)
	}
	var deleted map[string]any
	for _, ev := range e.siteEvents() {
		if ev.Type == pairing.EventLinkDeleted && ev.UserID == "user-1" {
			_ = json.Unmarshal(ev.Payload, &deleted)
		}
	}
	if deleted["by"] != string(pairing.ActorBot) {
		t.Fatalf("link.deleted event: %v", deleted)
	}

	// A late press on the old question: answered, "not linked".
	e.tg.UserPresses(5001, ask.MessageID, dataUnlinkYes, "en")
	e.idle()
	if last := e.tg.Sent()[len(e.tg.Sent())-1]; last.Plain() != e.txt("en", "telegram_not_linked", nil) || len(e.tg.CallbackAnswers()) != 3 {
		t.Fatalf("late press: %+v", last)
	}
}

func TestHelpStartAndHint(t *testing.T) {
	e := newEnv(t)
	e.run()
	for text, want := range map[string]string{
		"/help": "telegram_help", "/start": "telegram_start", "/START": "telegram_start",
		"hello": "telegram_hint", "/unknown": "telegram_hint", "/": "telegram_hint",
		"/start some-old-token": "telegram_deeplink_unknown", "/start bad token!": "telegram_deeplink_unknown",
	} {
		if got := e.reply(5001, text, "en").Plain(); got != e.txt("en", want, nil) {
			t.Errorf("%q: got %q, want %s", text, got, want)
		}
	}
	// A sticker (no text) gets the hint too.
	before := len(e.tg.Sent())
	e.tg.PushUpdate(`{"message":{"message_id":9,"from":{"id":5001,"is_bot":false,"first_name":"A"},"chat":{"id":5001,"type":"private"},"date":1,"sticker":{"file_id":"x"}}}`)
	e.idle()
	if got := e.tg.Sent()[before:]; len(got) != 1 || got[0].Plain() != e.txt("en", "telegram_hint", nil) {
		t.Fatalf("sticker: %+v", got)
	}
}

func TestPINValidityPluralForms(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		lang    string
		minutes int
		want    string
	}{
		{"ru", 1, "1 минуту."}, {"ru", 3, "3 минуты."}, {"ru", 5, "5 минут."}, {"ru", 11, "11 минут."}, {"ru", 21, "21 минуту."},
		{"ru-RU", 22, "22 минуты."}, {"en", 1, "1 minute."}, {"en-GB", 10, "10 minutes."}, {"fr", 1, "1 minute."},
		{"fr", 2, "2 minutes."}, {"zh-hant", 5, "5 分鐘"}, {"zh-TW", 1, "1 分鐘"}, {"", 2, "2 minutes."}, {"xx", 1, "1 minute."},
	} {
		pin := pairing.IssuedPIN{PIN: "123456", URL: "https://x.example/p?a=1&b=2", ExpiresAt: start.Add(time.Duration(tc.minutes) * time.Minute)}
		m := e.bot.pinMessage(1, e.bot.locale(tc.lang), pin, e.bot.cfg.OneTapURL != "")
		plain := tgfake.Visible(m.text)
		if !strings.Contains(plain, tc.want) || !strings.Contains(plain, "123456") || !strings.Contains(plain, "https://x.example/p?a=1&b=2") {
			t.Errorf("%s %d: %q", tc.lang, tc.minutes, plain)
		}
		if err := tgfake.CheckHTML(m.text); err != nil || strings.Contains(m.text, "a=1&b") {
			t.Errorf("%s: HTML %q: %v", tc.lang, m.text, err)
		}
	}
}

func TestRussianPINEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.run()
	m := e.reply(5001, "/login", "ru")
	if !strings.Contains(m.Plain(), "Он действует 10 минут.") || m.Buttons()[0].Text != "Открыть сайт" {
		t.Fatalf("Russian pairing message %q %+v", m.Plain(), m.Buttons())
	}
	e.clock.Advance(11*time.Second + 5*time.Minute)
	// A PIN issued with 5 minutes left on the clock reads "5 минут".
	pin, err := e.svc.IssuePIN(e.ctx, key(5001), pairing.Profile{}, pairing.IssueOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	pin.ExpiresAt = e.clock.Now().Add(5 * time.Minute)
	if got := tgfake.Visible(e.bot.pinMessage(5001, "ru", pin, e.bot.cfg.OneTapURL != "").text); !strings.Contains(got, "5 минут.") {
		t.Fatalf("%q", got)
	}
}

func TestFallbackLocale(t *testing.T) {
	e := newEnv(t)
	e.run()
	for lang, want := range map[string]string{"xx": "en", "": "en", "de-DE": "en", "ru-RU": "ru", "fr-CA": "fr", "zh-hant": "zh-TW", "en-US": "en"} {
		if got := e.reply(5001, "/help", lang).Plain(); got != e.txt(want, "telegram_help", nil) {
			t.Errorf("%q: got %q, want the %s text", lang, got, want)
		}
	}

	// A channel whose fallback is Russian: unknown languages read Russian,
	// English stays English.
	ru := newEnv(t, withConfig(func(c *Config) { c.FallbackLocale = "ru" }))
	ru.run()
	if got := ru.reply(5001, "/help", "xx").Plain(); got != ru.txt("ru", "telegram_help", nil) {
		t.Errorf("fallback ru: %q", got)
	}
	if got := ru.reply(5001, "/help", "en").Plain(); got != ru.txt("en", "telegram_help", nil) {
		t.Errorf("en with fallback ru: %q", got)
	}
	if got := ru.reply(5002, "/help", "").Plain(); got != ru.txt("ru", "telegram_help", nil) {
		t.Errorf("no language with fallback ru: %q", got)
	}
}

func TestOperatorOverridesTexts(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "en"), 0o755); err != nil {
		t.Fatal(err)
	}
	override := "telegram_hint: '<b>Shop bot</b>: type /login &amp; follow the link.'\n" +
		"telegram_help: '<oops> unsupported tag'\n"
	if err := os.WriteFile(filepath.Join(dir, "en", "mine.yaml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	texts, err := templates.Load(dir, "en")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withTexts(texts))
	e.run()
	if m := e.reply(5001, "hi", "en"); m.Plain() != "Shop bot: type /login & follow the link." || m.ParseMode != "HTML" {
		t.Fatalf("override not used: %+v", m)
	}
	// Broken HTML in an override: Telegram refuses it, the bot sends the
	// text plain rather than nothing, and says so in the log.
	if m := e.reply(5001, "/help", "en"); m.Text != "unsupported tag" || m.ParseMode != "" {
		t.Fatalf("broken override: %+v", m)
	}
	if !strings.Contains(e.logs.String(), "sent as plain text") {
		t.Fatal("broken template not logged")
	}
	// Other locales keep their texts.
	if got := e.reply(5001, "hi", "ru").Plain(); got != e.txt("ru", "telegram_hint", nil) {
		t.Fatalf("ru changed: %q", got)
	}
}

// A development site.link_url on localhost gets no button (Telegram would
// refuse the message); the link stays in the text.
func TestLocalLinkURLHasNoButton(t *testing.T) {
	e := newEnv(t, withLinkURL("http://127.0.0.1:8080/pair?buid={buid}"))
	e.run()
	m := e.reply(5001, "/login", "en")
	if len(m.Buttons()) != 0 || !strings.Contains(m.Plain(), "http://127.0.0.1:8080/pair?buid=") {
		t.Fatalf("%+v", m)
	}
	pin, buid := pinOf(t, m)
	if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: buid, PIN: pin}); err != nil {
		t.Fatal(err)
	}
}

func TestButtonURLAllowed(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://shop.example/pair?buid=x": true, "http://shop.example/p": true, "https://93.184.216.34/p": true,
		"http://localhost:8080/p": false, "https://localhost/p": false, "http://127.0.0.1/p": false, "http://10.1.2.3/p": false,
		"http://192.168.0.1/p": false, "http://[::1]/p": false, "http://app.localhost/p": false, "http://intranet/p": false,
		"ftp://shop.example/p": false, "javascript:alert(1)": false, "": false, "https://": false,
	} {
		if got := buttonURLAllowed(raw); got != want {
			t.Errorf("%q: %v, want %v", raw, got, want)
		}
	}
}

func TestGroupChats(t *testing.T) {
	e := newEnv(t)
	e.run()
	const group = -1001234567890
	e.tg.GroupSends(group, 5001, "hello everyone", "en")
	e.tg.GroupSends(group, 5001, "/login@some_other_bot", "en")
	e.idle()
	if n := len(e.tg.Sent()); n != 0 {
		t.Fatalf("the bot talked in a group: %+v", e.tg.Sent())
	}
	e.tg.GroupSends(group, 5001, "/login", "ru")
	e.idle()
	sent := e.tg.Sent()
	if len(sent) != 1 || sent[0].ChatID != group || sent[0].Plain() != e.txt("ru", "telegram_private_only", nil) {
		t.Fatalf("group /login: %+v", sent)
	}
	if b := sent[0].Buttons(); len(b) != 1 || b[0].URL == nil || *b[0].URL != "https://t.me/pairing_test_bot" {
		t.Fatalf("button %+v", b)
	}
	if call := e.tg.Calls("sendMessage"); call[len(call)-1].Params.Get("reply_to_message_id") == "" {
		t.Fatal("not a reply")
	}
	// Nothing was recorded for the group or its member.
	if st := e.status(group); st.Lead.ID != 0 {
		t.Fatal("a lead for the group")
	}
	if st := e.status(5001); st.Lead.ID != 0 {
		t.Fatal("a lead from a group message")
	}
	if e.persons() != 0 {
		t.Fatal("a person from a group message")
	}
}

func TestSetMyCommandsPerLanguage(t *testing.T) {
	e := newEnv(t)
	e.run()
	cmds := e.tg.Commands()
	for _, lang := range []string{"", "en", "ru", "fr", "zh"} {
		list := cmds[lang]
		if len(list) != 4 || list[0].Command != "login" || list[3].Command != "help" {
			t.Fatalf("%q: %+v", lang, list)
		}
	}
	if cmds["ru"][0].Description != e.txt("ru", "telegram_cmd_login", nil) || cmds[""][0].Description != e.txt("en", "telegram_cmd_login", nil) {
		t.Fatalf("descriptions: %+v", cmds)
	}
}

// pins resend from the REST API reaches the bot through the service.
func TestResendPINReachesTheChat(t *testing.T) {
	e := newEnv(t)
	e.run()
	_, buid := pinOf(t, e.reply(5001, "/login", "fr"))
	e.clock.Advance(2 * time.Minute)
	pin, err := e.svc.ResendPIN(e.ctx, buid)
	if err != nil {
		t.Fatal(err)
	}
	sent := e.tg.Sent()
	m := sent[len(sent)-1]
	gotPIN, gotBUID := pinOf(t, m)
	if m.ChatID != 5001 || gotPIN != pin.PIN || gotBUID != pin.BUID || !strings.HasPrefix(m.Plain(), "Votre code PIN") {
		t.Fatalf("resent message %+v", m)
	}
}
