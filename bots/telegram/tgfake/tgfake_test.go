package tgfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

const tok = "4242:fake-TOKEN_abcdefghijklmnopqrstuvwxyz"

// raw calls a method with form parameters and decodes Telegram's answer.
func raw(t *testing.T, s *Server, token, method string, params url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.URL()+"/bot"+token+"/"+method, params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func client(t *testing.T, s *Server) *tgbotapi.BotAPI {
	t.Helper()
	api, err := tgbotapi.NewBotAPIWithAPIEndpoint(tok, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func apiErr(t *testing.T, err error) *tgbotapi.Error {
	t.Helper()
	var te *tgbotapi.Error
	if !errors.As(err, &te) {
		t.Fatalf("not a Bot API error: %v", err)
	}
	return te
}

func TestTokenAndMethodInPath(t *testing.T) {
	s := New(t, tok)
	code, out := raw(t, s, "4242:wrong", "getMe", nil)
	if code != 401 || out["ok"] != false || out["error_code"] != float64(401) || out["description"] != "Unauthorized" {
		t.Fatalf("wrong token: %d %v", code, out)
	}
	code, out = raw(t, s, tok, "noSuchMethod", nil)
	if code != 404 || out["description"] != "Not Found" {
		t.Fatalf("unknown method: %d %v", code, out)
	}
	api := client(t, s) // getMe through the SDK
	if api.Self.UserName != "pairing_test_bot" || api.Self.ID != 4242 || !api.Self.IsBot {
		t.Fatalf("getMe %+v", api.Self)
	}
	if n := s.CallCount("getMe"); n != 1 {
		t.Fatalf("%d getMe calls recorded (the wrong-token call must not count)", n)
	}
}

func TestSendMessageValidatesLikeTelegram(t *testing.T) {
	s := New(t, tok)
	api := client(t, s)
	m := tgbotapi.NewMessage(5001, "PIN: <code>123456</code> &amp; more")
	m.ParseMode = "HTML"
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonURL("Open", "https://shop.example/p?a=1")))
	m.ReplyMarkup = kb
	got, err := api.Send(m)
	if err != nil || got.MessageID != 1 || got.Text != "PIN: 123456 & more" || got.Chat.ID != 5001 {
		t.Fatalf("send: %+v %v", got, err)
	}
	sent := s.Sent()
	if len(sent) != 1 || sent[0].Plain() != "PIN: 123456 & more" || len(sent[0].Buttons()) != 1 || sent[0].ParseMode != "HTML" {
		t.Fatalf("recorded %+v", sent)
	}

	for name, tc := range map[string]struct {
		text, mode, button string
		want               string
	}{
		"bad tag":       {"a <oops> b", "HTML", "", "can't parse entities"},
		"unclosed":      {"a <b>bold", "HTML", "", "can't parse entities"},
		"bare <":        {"1 < 2", "HTML", "", "can't parse entities"},
		"empty":         {"  ", "", "", "message text is empty"},
		"empty HTML":    {"<b> </b>", "HTML", "", "message text is empty"},
		"too long":      {strings.Repeat("я", 4097), "", "", "message is too long"},
		"localhost btn": {"x", "", "http://localhost:8080/p", "Wrong HTTP URL"},
		"loopback btn":  {"x", "", "http://127.0.0.1/p", "Wrong HTTP URL"},
		"private btn":   {"x", "", "http://192.168.1.2/p", "Wrong HTTP URL"},
	} {
		m := tgbotapi.NewMessage(5001, tc.text)
		m.ParseMode = tc.mode
		if tc.button != "" {
			m.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonURL("b", tc.button)))
		}
		_, err := api.Request(m)
		if te := apiErr(t, err); te.Code != 400 || !strings.HasPrefix(te.Message, "Bad Request: ") || !strings.Contains(te.Message, tc.want) {
			t.Errorf("%s: %d %q", name, te.Code, te.Message)
		}
	}
	// Exactly 4096 characters pass; so does a lone & or > in HTML.
	for _, text := range []string{strings.Repeat("я", 4096), "a & b > c"} {
		m := tgbotapi.NewMessage(5001, text)
		m.ParseMode = "HTML"
		if _, err := api.Request(m); err != nil {
			t.Errorf("%.20q: %v", text, err)
		}
	}
	if len(s.Sent()) != 3 {
		t.Fatalf("refused messages were recorded: %d", len(s.Sent()))
	}
}

func TestFailuresHaveTelegramShapes(t *testing.T) {
	s := New(t, tok)
	s.FailNext("sendMessage", 429, 7)
	code, out := raw(t, s, tok, "sendMessage", url.Values{"chat_id": {"1"}, "text": {"x"}})
	params, _ := out["parameters"].(map[string]any)
	if code != 429 || out["ok"] != false || out["description"] != "Too Many Requests: retry after 7" || params["retry_after"] != float64(7) {
		t.Fatalf("429: %d %v", code, out)
	}
	// The next call goes through: FailNext is one failure.
	if code, _ := raw(t, s, tok, "sendMessage", url.Values{"chat_id": {"1"}, "text": {"x"}}); code != 200 {
		t.Fatalf("after the failure: %d", code)
	}

	api := client(t, s)
	s.Block(5001)
	_, err := api.Request(tgbotapi.NewMessage(5001, "hi"))
	if te := apiErr(t, err); te.Code != 403 || te.Message != "Forbidden: bot was blocked by the user" {
		t.Fatalf("blocked: %+v", te)
	}
	s.Unblock(5001)
	s.FailNext("SENDMESSAGE", 502, 0) // method names are case-insensitive
	s.FailNext("sendMessage", 429, 2)
	_, err = api.Request(tgbotapi.NewMessage(5001, "hi"))
	if te := apiErr(t, err); te.Code != 502 {
		t.Fatalf("stacked 1: %+v", te)
	}
	_, err = api.Request(tgbotapi.NewMessage(5001, "hi"))
	if te := apiErr(t, err); te.Code != 429 || te.RetryAfter != 2 {
		t.Fatalf("stacked 2: %+v", te)
	}
	if _, err := api.Request(tgbotapi.NewMessage(5001, "hi")); err != nil {
		t.Fatal(err)
	}
}

func TestGetUpdatesOffsetsAndLongPoll(t *testing.T) {
	s := New(t, tok)
	api := client(t, s)
	// Nothing queued: the long poll waits out its timeout.
	began := time.Now()
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	if err != nil || len(ups) != 0 || time.Since(began) < 900*time.Millisecond {
		t.Fatalf("empty poll: %v %v after %v", ups, err, time.Since(began))
	}
	// A waiting poll returns as soon as an update arrives.
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.UserSends(5001, "/login", "ru")
	}()
	began = time.Now()
	ups, err = api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 10})
	if err != nil || len(ups) != 1 || time.Since(began) > 5*time.Second {
		t.Fatalf("woken poll: %v %v", ups, err)
	}
	u := ups[0]
	if u.Message == nil || u.Message.Text != "/login" || !u.Message.IsCommand() || u.Message.Command() != "login" ||
		u.Message.From.LanguageCode != "ru" || u.Message.Chat.Type != "private" || u.Message.Chat.ID != 5001 {
		t.Fatalf("update %+v", u.Message)
	}
	// Unconfirmed updates come again; an offset above confirms them.
	s.GroupSends(-100, 5001, "hi", "en")
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{})
	if len(ups) != 2 || ups[0].UpdateID != u.UpdateID || ups[1].Message.Chat.Type != "supergroup" {
		t.Fatalf("redelivery %+v", ups)
	}
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[0].UpdateID + 1})
	if len(ups) != 1 || s.Pending() != 1 {
		t.Fatalf("after confirming one: %d, %d pending", len(ups), s.Pending())
	}
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{Offset: ups[0].UpdateID + 1})
	if len(ups) != 0 || s.Pending() != 0 {
		t.Fatal("not confirmed")
	}
	// allowed_updates filters (and sticks, as in Telegram).
	s.MemberStatus(5001, "kicked")
	s.UserSends(5001, "/help", "en")
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{AllowedUpdates: []string{"message"}})
	if len(ups) != 1 || ups[0].Message == nil {
		t.Fatalf("allowed_updates: %+v", ups)
	}
}

func TestUpdateHelpersBuildRealUpdates(t *testing.T) {
	s := New(t, tok)
	api := client(t, s)
	s.UserPresses(5001, 9, "unlink:yes", "fr")
	s.MemberStatus(5001, "kicked")
	s.MemberStatus(5001, "member")
	s.PushUpdate(`{"update_id":5,"message":{"message_id":1,"chat":{"id":1,"type":"private"},"date":1,"text":"x"}}`)
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 4 {
		t.Fatalf("%v %v", ups, err)
	}
	cq := ups[0].CallbackQuery
	if cq == nil || cq.Data != "unlink:yes" || cq.Message.MessageID != 9 || cq.Message.Chat.ID != 5001 || cq.From.LanguageCode != "fr" {
		t.Fatalf("callback %+v", cq)
	}
	if m := ups[1].MyChatMember; m == nil || m.NewChatMember.Status != "kicked" || m.OldChatMember.Status != "member" || m.Chat.Type != "private" {
		t.Fatalf("kicked %+v", m)
	}
	if m := ups[2].MyChatMember; m.NewChatMember.Status != "member" || m.OldChatMember.Status != "kicked" {
		t.Fatalf("member %+v", m)
	}
	if ups[3].UpdateID != 5 || ups[2].UpdateID <= ups[1].UpdateID {
		t.Fatalf("ids %d %d %d", ups[1].UpdateID, ups[2].UpdateID, ups[3].UpdateID)
	}
	// Callback answers: once per query, unknown ids refused.
	if _, err := api.Request(tgbotapi.NewCallback(cq.ID, "")); err != nil {
		t.Fatal(err)
	}
	_, err = api.Request(tgbotapi.NewCallback(cq.ID, ""))
	if te := apiErr(t, err); te.Code != 400 || !strings.Contains(te.Message, "query ID is invalid") {
		t.Fatalf("second answer: %+v", te)
	}
	if a := s.CallbackAnswers(); len(a) != 1 || a[0].CallbackQueryID != cq.ID {
		t.Fatalf("answers %+v", a)
	}
}

func TestEditMessageText(t *testing.T) {
	s := New(t, tok)
	api := client(t, s)
	m := tgbotapi.NewMessage(5001, "Unlink?")
	m.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("Yes", "unlink:yes")))
	sent, err := api.Send(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Request(tgbotapi.NewEditMessageText(5001, sent.MessageID, "Done")); err != nil {
		t.Fatal(err)
	}
	last := s.Sent()[1]
	if last.Method != "editMessageText" || last.MessageID != sent.MessageID || last.Text != "Done" || last.Keyboard != nil {
		t.Fatalf("edit %+v", last)
	}
	_, err = api.Request(tgbotapi.NewEditMessageText(5001, sent.MessageID, "Done"))
	if te := apiErr(t, err); !strings.Contains(te.Message, "message is not modified") {
		t.Fatalf("same edit: %+v", te)
	}
	_, err = api.Request(tgbotapi.NewEditMessageText(5001, 999, "x"))
	if te := apiErr(t, err); !strings.Contains(te.Message, "message to edit not found") {
		t.Fatalf("unknown message: %+v", te)
	}
}

func TestSetMyCommands(t *testing.T) {
	s := New(t, tok)
	api := client(t, s)
	cmds := []tgbotapi.BotCommand{{Command: "login", Description: "Link"}, {Command: "help", Description: "Help"}}
	if _, err := api.Request(tgbotapi.NewSetMyCommands(cmds...)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Request(tgbotapi.SetMyCommandsConfig{Commands: cmds[:1], LanguageCode: "ru"}); err != nil {
		t.Fatal(err)
	}
	got := s.Commands()
	if len(got[""]) != 2 || len(got["ru"]) != 1 || got["ru"][0].Command != "login" {
		t.Fatalf("%+v", got)
	}
	for _, bad := range []tgbotapi.SetMyCommandsConfig{
		{Commands: []tgbotapi.BotCommand{{Command: "Login", Description: "x"}}},
		{Commands: []tgbotapi.BotCommand{{Command: "login", Description: ""}}},
		{Commands: cmds, LanguageCode: "rus"},
	} {
		_, err := api.Request(bad)
		if te := apiErr(t, err); te.Code != 400 {
			t.Errorf("%+v: %+v", bad, te)
		}
	}
}

func TestWebhookDeliveryWithSecret(t *testing.T) {
	s := New(t, tok)
	s.SetWebhookRetryDelay(5 * time.Millisecond)
	var fails atomic.Int32
	fails.Store(2)
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(SecretHeader) != "s3cret_T0ken" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(401)
			return
		}
		if fails.Add(-1) >= 0 {
			w.WriteHeader(500)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer hook.Close()

	code, out := raw(t, s, tok, "setWebhook", url.Values{"url": {hook.URL + "/hook"}, "secret_token": {"bad secret!"}})
	if code != 400 || !strings.Contains(out["description"].(string), "secret token contains unallowed characters") {
		t.Fatalf("bad secret: %d %v", code, out)
	}
	code, out = raw(t, s, tok, "setWebhook", url.Values{"url": {hook.URL + "/hook"}, "secret_token": {"s3cret_T0ken"},
		"allowed_updates": {`["message","callback_query","my_chat_member"]`}})
	if code != 200 || out["result"] != true || out["description"] != "Webhook was set" {
		t.Fatalf("setWebhook: %d %v", code, out)
	}
	if w := s.Webhook(); w.SecretToken != "s3cret_T0ken" || len(w.AllowedUpdates) != 3 {
		t.Fatalf("webhook %+v", w)
	}
	// getUpdates is refused while a webhook is set.
	if code, out := raw(t, s, tok, "getUpdates", nil); code != 409 || !strings.Contains(out["description"].(string), "webhook is active") {
		t.Fatalf("getUpdates with a webhook: %d %v", code, out)
	}

	id := s.UserSends(5001, "/login", "en")
	select {
	case body := <-got:
		var u tgbotapi.Update
		if err := json.Unmarshal([]byte(body), &u); err != nil || u.UpdateID != id || u.Message.Text != "/login" {
			t.Fatalf("delivered %s", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("not delivered: %+v", s.Deliveries())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	d := s.Deliveries()
	if len(d) != 3 || d[0].Status != 500 || d[1].Status != 500 || d[2].Status != 200 {
		t.Fatalf("deliveries %+v", d)
	}
	code, out = raw(t, s, tok, "getWebhookInfo", nil)
	info, _ := out["result"].(map[string]any)
	if code != 200 || info["url"] != hook.URL+"/hook" || !strings.Contains(info["last_error_message"].(string), "500") {
		t.Fatalf("webhook info %v", out)
	}
	// deleteWebhook: polling works again.
	if code, _ := raw(t, s, tok, "deleteWebhook", nil); code != 200 || s.Webhook().URL != "" {
		t.Fatal("deleteWebhook")
	}
	if code, _ := raw(t, s, tok, "getUpdates", nil); code != 200 {
		t.Fatal("getUpdates after deleteWebhook")
	}
}

func TestCloseEndsLongPolls(t *testing.T) {
	s := New(t, tok)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.URL() + "/bot" + tok + "/getUpdates?timeout=30")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if err := s.Wait(context.Background(), func() bool { return len(s.calls) > 0 }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("long poll outlived Close")
	}
	s.Close() // twice is fine
}

func TestCheckHTML(t *testing.T) {
	for s, ok := range map[string]bool{
		"plain": true, "<b>x</b>": true, `<a href="https://x">x</a>`: true, "<code>1</code> &amp; <i>2</i>": true,
		"<B>x</B>": true, "<b><i>x</i></b>": true, "<a>x</a>": false, "<b>x</i>": false, "<p>x</p>": false, "x < y": false,
		"<b>x": false, "</b>": false,
	} {
		if err := CheckHTML(s); (err == nil) != ok {
			t.Errorf("%q: %v", s, err)
		}
	}
	if Visible("<b>a</b> &amp; <code>&lt;b&gt;</code>") != "a & <b>" {
		t.Fatal(Visible("<b>a</b> &amp; <code>&lt;b&gt;</code>"))
	}
}
