package messenger

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

func TestLoginSendsPairingMessageThatAuthorizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fb.SetProfile("5001", fbfake.Profile{FirstName: "Анна", LastName: "К", Locale: "ru_RU"})
	e.deliver(fbfake.Text("5001", "m.1", "Войти"))
	m := e.last()
	if m.RecipientID != "5001" || m.MessagingType != "RESPONSE" || m.Tag != "" {
		t.Fatalf("envelope %+v", m)
	}
	if !strings.Contains(m.Text, "10 минут.") || !strings.HasPrefix(m.Text, "Ваш PIN") {
		t.Fatalf("not the Russian pairing text: %q", m.Text)
	}
	if len(m.Buttons) != 2 || m.Buttons[0].Title != "Открыть сайт" || !strings.HasPrefix(m.Buttons[0].URL, "https://shop.example/pair?buid=") ||
		m.Buttons[1].Type != "account_link" || m.Buttons[1].URL != loginURL {
		t.Fatalf("buttons %+v", m.Buttons)
	}
	pin, buid := pinOf(t, m)
	res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: buid, PIN: pin, UserID: "user-1"})
	if err != nil || res.Outcome != pairing.OutcomeLinked {
		t.Fatalf("authorize with the sent PIN: %+v %v", res, err)
	}
	if res.Lead.Profile.FirstName != "Анна" || res.Lead.Profile.Locale != "ru_RU" {
		t.Fatalf("profile not recorded: %+v", res.Lead.Profile)
	}
	// Without LoginURL there is no Log In button; fr is the page fallback.
	if rec := e.post(secretB, fbfake.Delivery(pageB, fbfake.Text("6001", "m.2", "LOGIN"))); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if m := e.last(); len(m.Buttons) != 1 || !strings.HasPrefix(m.Text, "Votre code PIN") {
		t.Fatalf("page B message %+v", m)
	}
}

func TestPINValidityPluralForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hub.byName["fb-shop"]
	for _, tc := range []struct {
		locale  string
		minutes int
		want    string
	}{
		{"ru_RU", 1, "1 минуту"}, {"ru", 3, "3 минуты"}, {"ru", 5, "5 минут"}, {"ru", 21, "21 минуту"},
		{"en_US", 1, "1 minute."}, {"en_GB", 10, "10 minutes."}, {"fr_FR", 1, "1 minute."}, {"fr", 2, "2 minutes."},
		{"zh_TW", 5, "5 分鐘"}, {"", 2, "2 minutes."}, {"xx_XX", 1, "1 minute."},
	} {
		pin := pairing.IssuedPIN{PIN: "123456", URL: "https://x.example/p", ExpiresAt: start.Add(time.Duration(tc.minutes) * time.Minute)}
		m := e.hub.pinMessage(p, tc.locale, pin)
		if got := m.Attachment.Payload.Text; !strings.Contains(got, tc.want) || !strings.Contains(got, "123456") {
			t.Errorf("%s %d: %q", tc.locale, tc.minutes, got)
		}
	}
}

func TestChatWords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for in, want := range map[string]string{
		"login": payloadLink, " LOGIN ": payloadLink, "/Link": payloadLink, "Log  In": payloadLink, "войти": payloadLink,
		"ВОЙТИ": payloadLink, "connexion": payloadLink, "登入": payloadLink, "logout": payloadUnlink, "Unlink": payloadUnlink,
		"выйти": payloadUnlink, "déconnexion": payloadUnlink, "登出": payloadUnlink, "Status": payloadStatus, "статус": payloadStatus,
		"狀態": payloadStatus, "HELP": payloadHelp, "aide": payloadHelp, "說明": payloadHelp,
	} {
		if got := e.hub.words[normalizeWord(in)]; got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"", "hello", "login please", "loginx"} {
		if got, ok := e.hub.words[normalizeWord(in)]; ok {
			t.Errorf("%q is a command (%s)", in, got)
		}
	}
}

func TestLoginTooSoonSaysWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.1", "login"))
	e.clock.Advance(3 * time.Second)
	e.deliver(fbfake.Text("5001", "m.2", "login"))
	if got := e.last().Text; got != e.hub.text("en", "messenger_wait", map[string]any{"Seconds": 7}) || !strings.Contains(got, "7 seconds") {
		t.Fatalf("wait text %q", got)
	}
	e.clock.Advance(7 * time.Second)
	e.deliver(fbfake.Postback("5001", payloadLink))
	pinOf(t, e.last())
}

func TestStatusAndUnlinkWithConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.0", "logout"))
	if m := e.last(); m.Text != e.text("en", "messenger_not_linked") || !slices.Equal(payloads(m.QuickReplies), []string{payloadLink}) {
		t.Fatalf("logout while not linked: %+v", m)
	}
	if _, err := e.svc.LinkLead(e.ctx, keyA("5001"), "user-1"); err != nil {
		t.Fatal(err)
	}
	e.deliver(fbfake.Text("5001", "m.1", "status"))
	if m := e.last(); m.Text != e.text("en", "messenger_status_linked") || strings.Contains(m.Text, "user-1") {
		t.Fatalf("status %+v", m)
	}
	e.deliver(fbfake.Postback("5001", payloadUnlink))
	m := e.last()
	if m.Text != e.text("en", "messenger_unlink_confirm") || !slices.Equal(payloads(m.QuickReplies), []string{payloadUnlinkConfirm, payloadUnlinkCancel}) {
		t.Fatalf("confirmation %+v", m)
	}
	e.deliver(fbfake.QuickReplyEvent("5001", "m.2", "Cancel", payloadUnlinkCancel))
	if st, _ := e.svc.Status(e.ctx, keyA("5001")); !st.Linked || e.last().Text != e.text("en", "messenger_unlink_cancelled") {
		t.Fatal("cancel unlinked")
	}
	e.deliver(fbfake.QuickReplyEvent("5001", "m.3", "Yes, unlink", payloadUnlinkConfirm))
	if st, _ := e.svc.Status(e.ctx, keyA("5001")); st.Linked || e.last().Text != e.text("en", "messenger_unlinked") {
		t.Fatal("confirm did not unlink")
	}
	evs := e.store.SiteEvents()
	last := evs[len(evs)-1]
	if last.Type != pairing.EventLinkDeleted || !strings.Contains(string(last.Payload), `"by":"bot"`) {
		t.Fatalf("site event %s %s", last.Type, last.Payload)
	}
	e.deliver(fbfake.QuickReplyEvent("5001", "m.4", "Yes, unlink", payloadUnlinkConfirm))
	if e.last().Text != e.text("en", "messenger_not_linked") {
		t.Fatal("second confirm")
	}
}

func TestPostbacksAndReferrals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ref := func(m map[string]any) map[string]any {
		m["postback"].(map[string]any)["referral"] = map[string]any{"ref": "dl_secret_token", "source": "SHORTLINK", "type": "OPEN_THREAD"}
		return m
	}
	cases := []struct {
		name  string
		event map[string]any
		want  string // text key, or "" for the pairing message
	}{
		{"get started", fbfake.Postback("5001", payloadGetStarted), "messenger_welcome"},
		{"get started with ref", ref(fbfake.Postback("5002", payloadGetStarted)), "messenger_deeplink_unknown"},
		{"referral", fbfake.Referral("5003", "dl_other_token"), "messenger_deeplink_unknown"},
		{"link", fbfake.Postback("5004", payloadLink), ""},
		{"status", fbfake.Postback("5005", payloadStatus), "messenger_status_not_linked"},
		{"help", fbfake.Postback("5006", payloadHelp), "messenger_help"},
		{"unknown payload", fbfake.Postback("5007", "SOMETHING_ELSE"), "messenger_hint"},
		{"other text", fbfake.Text("5008", "m.8", "what is this?"), "messenger_hint"},
		{"attachment only", map[string]any{"sender": map[string]string{"id": "5009"}, "timestamp": 1, "message": map[string]any{"mid": "m.9", "attachments": []any{map[string]any{"type": "image"}}}}, "messenger_hint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := len(e.fb.Sent())
			e.deliver(tc.event)
			if len(e.fb.Sent()) != n+1 {
				t.Fatalf("sent %d messages", len(e.fb.Sent())-n)
			}
			m := e.last()
			if tc.want == "" {
				pinOf(t, m)
				return
			}
			if m.Text != e.text("en", tc.want) {
				t.Fatalf("got %q want %s", m.Text, tc.want)
			}
		})
	}
	if !slices.Equal(payloads(e.fb.Sent()[0].QuickReplies), []string{payloadLink, payloadUnlink, payloadStatus}) {
		t.Fatalf("welcome quick replies %+v", e.fb.Sent()[0].QuickReplies)
	}
	n := len(e.fb.Sent())
	e.deliver(map[string]any{"sender": map[string]string{"id": "5010"}, "timestamp": 2, "referral": map[string]any{"source": "ADS", "type": "OPEN_THREAD", "ad_id": "1"}})
	if len(e.fb.Sent()) != n {
		t.Fatal("a referral without ref was answered")
	}
}

func TestIgnoredKindsAreNotAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw := []string{
		`{"sender":{"id":"5001"},"recipient":{"id":"` + pageA + `"},"timestamp":1,"delivery":{"mids":["m.1"],"watermark":1}}`,
		`{"sender":{"id":"5001"},"recipient":{"id":"` + pageA + `"},"timestamp":2,"read":{"watermark":1}}`,
		`{"sender":{"id":"5001"},"recipient":{"id":"` + pageA + `"},"timestamp":3,"reaction":{"mid":"m.1","action":"react","emoji":"x"}}`,
		`{"sender":{"id":"` + pageA + `"},"recipient":{"id":"5001"},"timestamp":4,"message":{"mid":"m.echo","is_echo":true,"app_id":1001,"text":"login"}}`,
		`{"recipient":{"id":"` + pageA + `"},"timestamp":5,"optin":{"ref":"PASS_THROUGH_PARAM","user_ref":"UNIQUE_REF_PARAM"}}`,
		`{"sender":{"user_ref":"chat-plugin-guest"},"recipient":{"id":"` + pageA + `"},"timestamp":6,"message":{"mid":"m.guest","text":"login"}}`,
		`{"sender":{"id":"5001"},"recipient":{"id":"` + pageA + `"},"timestamp":7,"brand_new_kind":{"x":1}}`,
	}
	var items []map[string]any
	for _, r := range raw {
		var m map[string]any
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			t.Fatal(err)
		}
		items = append(items, m)
	}
	e.deliver(items...)
	if len(e.fb.Sent()) != 0 || e.store.Persons() != 0 {
		t.Fatalf("ignored kinds had an effect: sent %d persons %d", len(e.fb.Sent()), e.store.Persons())
	}
	for _, kind := range []string{"unknown:delivery", "unknown:read", "unknown:reaction", "message_echo", "optin", "unknown:brand_new_kind"} {
		if !strings.Contains(e.logs.String(), `"kind":"`+kind+`"`) {
			t.Errorf("no debug log for %s", kind)
		}
	}
}

func TestWindowAndMessageTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.1", "hi"))
	pin, err := e.svc.IssuePIN(e.ctx, keyA("5001"), pairing.Profile{}, pairing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.hub.Channel("fb-shop").SendPIN(e.ctx, pin); err != nil {
		t.Fatal(err)
	}
	if m := e.last(); m.MessagingType != "RESPONSE" {
		t.Fatalf("inside the window: %+v", m)
	}
	e.clock.Advance(25 * time.Hour)
	e.fb.CloseWindow("5001")
	got, err := e.svc.ResendPIN(e.ctx, pin.BUID)
	if err != nil {
		t.Fatalf("resend outside the window: %v", err)
	}
	m := e.last()
	if m.MessagingType != "MESSAGE_TAG" || m.Tag != "ACCOUNT_UPDATE" || !strings.Contains(m.Text, got.PIN) {
		t.Fatalf("outside the window: %+v", m)
	}
	if e.hub.Channel("nope") != nil {
		t.Fatal("unknown channel")
	}
}
