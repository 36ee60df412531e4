package telegram

import (
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// catalogNotices renders link notices from the shipped texts, as the
// service's wiring does.
type catalogNotices struct{ c *templates.Catalog }

func (n catalogNotices) LinkNotice(locale, site string) (string, string) {
	return n.c.Text(locale, "link_notice", map[string]any{"Site": site}), n.c.Text(locale, "link_notice_button", nil)
}

// deliverNotice sends the queued link notice through the bot, as the
// outbox worker does, and returns the message the chat got.
func (e *env) deliverNotice() tgfake.SentMessage {
	e.t.Helper()
	claimed, err := e.store.ClaimDeliveries(e.ctx, pairing.ClaimRequest{Now: e.clock.Now(), Lease: time.Minute, Limit: 10, Token: "t"})
	if err != nil || len(claimed) != 1 {
		e.t.Fatalf("claimed %d notices: %v", len(claimed), err)
	}
	d := claimed[0]
	lead, err := e.store.LeadByKey(e.ctx, pairing.LeadKey{Channel: d.Channel, ExternalID: d.ExternalID})
	if err != nil {
		e.t.Fatal(err)
	}
	before := len(e.tg.Sent())
	if err := e.bot.Deliver(e.ctx, pairing.OutboundMessage{DeliveryID: d.ID, MessageID: d.MessageID, Lead: lead, Text: d.Text, Buttons: d.Buttons}); err != nil {
		e.t.Fatal(err)
	}
	return e.tg.Sent()[before]
}

// pressData has chatID press a button and returns what the bot sent or edited.
func (e *env) pressData(chatID int64, messageID int, data string) []tgfake.SentMessage {
	e.t.Helper()
	before := len(e.tg.Sent())
	e.tg.UserPresses(chatID, messageID, data, "ru")
	e.idle()
	return e.tg.Sent()[before:]
}

func TestLinkNoticeUnlinkButton(t *testing.T) {
	e := newEnv(t)
	e.svc.EnableLinkNotices(catalogNotices{e.texts})
	e.run()
	e.send(100, "/start", "ru")
	e.send(200, "/start", "en")
	if _, err := e.svc.LinkLead(e.ctx, key(100), "u-1"); err != nil {
		t.Fatal(err)
	}
	notice := e.deliverNotice()
	if notice.ChatID != 100 || !strings.Contains(notice.Text, "привязан к вашему аккаунту на нашем сайте") {
		t.Fatalf("notice %+v", notice)
	}
	bs := notice.Buttons()
	if len(bs) != 1 || bs[0].CallbackData == nil || bs[0].Text != "Это не я: отвязать" || notice.ParseMode != "" {
		t.Fatalf("notice buttons %+v, parse mode %q", bs, notice.ParseMode)
	}
	data := *bs[0].CallbackData

	// Another chat pressing the same data unlinks nothing.
	if got := e.pressData(200, notice.MessageID, data); len(got) != 0 {
		t.Fatalf("another chat's press answered %+v", got)
	}
	if e.status(100).UserID != "u-1" {
		t.Fatal("another chat's press unlinked")
	}

	got := e.pressData(100, notice.MessageID, data)
	if len(got) != 1 || got[0].MessageID != notice.MessageID || got[0].Keyboard != nil ||
		tgfake.Visible(got[0].Text) != e.txt("ru", "link_notice_unlinked", nil) {
		t.Fatalf("after the press: %+v", got)
	}
	if e.status(100).Linked {
		t.Fatal("still linked")
	}
	var deleted bool
	for _, ev := range e.siteEvents() {
		deleted = deleted || ev.Type == pairing.EventLinkDeleted && strings.Contains(string(ev.Payload), `"by":"link_notice"`)
	}
	if !deleted {
		t.Fatalf("no link.deleted by link_notice: %+v", e.siteEvents())
	}

	// A second press, once the link is gone, changes nothing and says so.
	if got := e.pressData(100, notice.MessageID, data); len(got) != 1 || tgfake.Visible(got[0].Text) != e.txt("ru", "link_notice_used", nil) {
		t.Fatalf("second press: %+v", got)
	}
}

func TestOneTapButton(t *testing.T) {
	const tap = "https://pairing.example/pair/telegram/telegram"
	t.Run("in the /login message above the link", func(t *testing.T) {
		e := newEnv(t, withConfig(func(c *Config) { c.OneTapURL = tap }))
		e.run()
		m := e.reply(300, "/login", "en")
		bs := m.Buttons()
		if len(bs) != 2 || bs[0].LoginURL == nil || bs[0].LoginURL.URL != tap || bs[0].Text != e.txt("en", "telegram_onetap_button", nil) ||
			bs[1].URL == nil || !strings.Contains(m.Plain(), *bs[1].URL) {
			t.Fatalf("buttons %+v", bs)
		}
		if pinRE.FindStringSubmatch(m.Plain()) == nil {
			t.Fatalf("the PIN left the message: %q", m.Plain())
		}
	})
	t.Run("refused by Telegram: sent without it", func(t *testing.T) {
		e := newEnv(t, withConfig(func(c *Config) { c.OneTapURL = tap }))
		e.tg.SetLoginDomain("other.example")
		e.run()
		m := e.reply(301, "/login", "en")
		for _, b := range m.Buttons() {
			if b.LoginURL != nil {
				t.Fatalf("login button kept: %+v", m.Buttons())
			}
		}
		if pin, _ := pinOf(t, m); pin == "" || !strings.Contains(e.logs.String(), "setdomain") {
			t.Fatalf("fallback message %q, logs %s", m.Text, e.logs.String())
		}
	})
	t.Run("off: no button, and the log says why once", func(t *testing.T) {
		e := newEnv(t, withConfig(func(c *Config) { c.OneTapOff = "server.public_url is not set" }))
		e.run()
		for _, b := range e.reply(302, "/login", "en").Buttons() {
			if b.LoginURL != nil {
				t.Fatal("login button without a URL")
			}
		}
		if n := strings.Count(e.logs.String(), "one-tap sign-in button left out"); n != 1 {
			t.Fatalf("logged %d times: %s", n, e.logs.String())
		}
	})
}
