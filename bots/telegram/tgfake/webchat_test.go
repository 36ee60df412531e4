package tgfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// TestLoginHashMatchesTelegram checks the login_url signature against a
// value computed independently (Python's hmac over Telegram's data-check
// string), and that any change to the data changes it.
func TestLoginHashMatchesTelegram(t *testing.T) {
	v := url.Values{"id": {"42"}, "first_name": {"Ann"}, "username": {"ann42"}, "auth_date": {"1700000000"}, "hash": {"ignored"}}
	const want = "ee89c9901105820265db3673eb3397875e833cb78aabc2f6470643b57e7ba856"
	if got := SignLogin("123456:ABC-def", v); got != want {
		t.Fatalf("hash %s, want %s", got, want)
	}
	for _, tc := range []struct{ key, val string }{{"id", "43"}, {"first_name", "Bob"}, {"auth_date", "1700000001"}, {"last_name", "X"}} {
		w := url.Values{}
		for k, vs := range v {
			w[k] = append([]string(nil), vs...)
		}
		w.Set(tc.key, tc.val)
		if SignLogin("123456:ABC-def", w) == want {
			t.Errorf("changing %s kept the hash", tc.key)
		}
	}
	if SignLogin("123456:other", v) == want {
		t.Error("another bot token gave the same hash")
	}
	s := New(t, "123456:ABC-def")
	signed := s.LoginData(42, "Ann", "ann42", time.Unix(1700000000, 0))
	if signed.Get("hash") != want || signed.Has("last_name") {
		t.Fatalf("LoginData %v", signed)
	}
}

func TestLocalButtonsAndLoginDomain(t *testing.T) {
	s := New(t, tok)
	send := func(kb tgbotapi.InlineKeyboardMarkup) int {
		b := jsonString(t, kb)
		st, _ := raw(t, s, tok, "sendMessage", url.Values{"chat_id": {"7"}, "text": {"hi"}, "reply_markup": {b}})
		return st
	}
	local := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonURL("open", "http://127.0.0.1:8080/pair")))
	if st := send(local); st != http.StatusBadRequest {
		t.Fatalf("loopback URL button: %d, want Telegram's 400", st)
	}
	s.AllowLocalURLs()
	if st := send(local); st != http.StatusOK {
		t.Fatalf("loopback URL button after AllowLocalURLs: %d", st)
	}
	login := tgbotapi.InlineKeyboardMarkup{InlineKeyboard: [][]tgbotapi.InlineKeyboardButton{{{Text: "Log in", LoginURL: &tgbotapi.LoginURL{URL: "https://shop.example/pair/telegram"}}}}}
	if st := send(login); st != http.StatusOK {
		t.Fatalf("login_url without a domain set: %d", st)
	}
	s.SetLoginDomain("other.example")
	if st := send(login); st != http.StatusBadRequest {
		t.Fatalf("login_url off the bot's domain: %d, want 400 BOT_DOMAIN_INVALID", st)
	}
	s.SetLoginDomain("shop.example")
	if st := send(login); st != http.StatusOK {
		t.Fatalf("login_url on the bot's domain: %d", st)
	}
}

// chatClient is a browser on the web chat (no script).
type chatClient struct {
	t *testing.T
	c *http.Client
	s *Server
}

func newChatClient(t *testing.T, s *Server) *chatClient {
	jar, _ := cookiejar.New(nil)
	return &chatClient{t: t, s: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *chatClient) req(method, path string, form url.Values, hdr ...string) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.s.URL()+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestWebChat(t *testing.T) {
	s := New(t, tok)
	if err := s.EnableWebChat(WebChatConfig{}); err != nil {
		t.Fatal(err)
	}
	c := newChatClient(t, s)

	// Nothing is sent before the person opened the chat.
	if st, _, _ := c.req("POST", "/chat/send", url.Values{"text": {"/login"}}); st != http.StatusForbidden {
		t.Fatalf("send without a person: %d", st)
	}
	st, body, h := c.req("GET", "/chat", nil)
	if st != 200 || !strings.Contains(body, "Отправить") || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("chat page: %d %v\n%s", st, h, body)
	}
	// Another site's form is refused.
	if st, _, _ := c.req("POST", "/chat/send", url.Values{"text": {"/login"}}, "Sec-Fetch-Site", "cross-site"); st != http.StatusForbidden {
		t.Fatalf("cross-site send: %d", st)
	}
	if s.Pending() != 0 {
		t.Fatal("a refused send queued an update")
	}

	// The person sends a command: an update with the person's language,
	// and the chat shows it; the bot answers with HTML and buttons.
	botErr := make(chan error, 1)
	go func() { botErr <- answerOnce(s) }()
	st, _, h = c.req("POST", "/chat/send", url.Values{"text": {"/login"}})
	if st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/chat") {
		t.Fatalf("send: %d %v", st, h)
	}
	if err := <-botErr; err != nil {
		t.Fatal(err)
	}
	_, body, _ = c.req("GET", "/chat", nil)
	for _, want := range []string{">/login<", "<code>123456</code>", "for ru-ru", "<b>bold</b>", "&lt;script&gt;alert(1)", `<a href="https://shop.example/a"`, `data-callback="ok:1"`, `data-login="1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("chat lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("the bot's text reached the page unescaped:\n%s", body)
	}
	msgID := s.Sent()[0].MessageID
	chat := s.Sent()[0].ChatID

	// A button the message does not carry cannot be pressed.
	if st, _, _ := c.req("POST", "/chat/press", url.Values{"message": {strconv.Itoa(msgID)}, "data": {"unlink:yes"}}); st != http.StatusBadRequest {
		t.Fatalf("press of a made-up button: %d", st)
	}
	before := s.Pending()
	if st, _, _ := c.req("POST", "/chat/press", url.Values{"message": {strconv.Itoa(msgID)}, "data": {"ok:1"}}); st != http.StatusSeeOther || s.Pending() != before+1 {
		t.Fatalf("press: %d, pending %d", st, s.Pending())
	}

	// login_url: a redirect to the URL with data signed for this person.
	st, _, h = c.req("GET", "/chat/login?message="+strconv.Itoa(msgID)+"&row=1&col=0", nil)
	to, err := url.Parse(h.Get("Location"))
	if st != http.StatusFound || err != nil || to.Host != "shop.example" {
		t.Fatalf("login: %d %q", st, h.Get("Location"))
	}
	q := to.Query()
	signed := url.Values{}
	for k, v := range q {
		if k != "x" { // the button URL's own parameter is not signed
			signed[k] = v
		}
	}
	if q.Get("x") != "1" || q.Get("id") != strconv.FormatInt(chat, 10) || q.Get("hash") != SignLogin(tok, signed) {
		t.Fatalf("login data %v", q)
	}
	if st, _, _ := c.req("GET", "/chat/login?message="+strconv.Itoa(msgID)+"&row=0&col=0", nil); st != http.StatusBadRequest {
		t.Fatalf("login on a callback button: %d", st)
	}

	// t.me/<bot>?start=: a Start button that sends /start <param>, shown
	// as "/start" alone.
	_, body, _ = c.req("GET", "/pairing_test_bot?start=pdl_abc-DEF_1", nil)
	if !strings.Contains(body, `value="/start pdl_abc-DEF_1"`) {
		t.Fatalf("start page:\n%s", body)
	}
	if _, body, _ = c.req("GET", "/pairing_test_bot?start=bad%20param!", nil); strings.Contains(body, `id="start"`) {
		t.Fatal("a start parameter Telegram would drop got a Start button")
	}
	c.req("POST", "/chat/send", url.Values{"text": {"/start pdl_abc-DEF_1"}})
	items := s.Transcript(chat)
	if last := items[len(items)-1]; !last.FromPerson || last.Text != "/start" {
		t.Fatalf("the chat shows %+v", last)
	}
	if _, v, _ := c.req("GET", "/chat/version", nil); v != strconv.Itoa(s.ChatVersion(chat)) {
		t.Fatalf("version %s", v)
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// answerOnce plays the bot: it takes the first update and answers with
// HTML, a callback button and a login_url button.
func answerOnce(s *Server) error {
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() == 0 {
		if time.Now().After(deadline) {
			return errors.New("no update came")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.PostForm(s.URL()+"/bot"+tok+"/getUpdates", url.Values{})
	if err != nil {
		return err
	}
	var out struct{ Result []tgbotapi.Update }
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || len(out.Result) == 0 || out.Result[0].Message == nil {
		return fmt.Errorf("getUpdates: %v %+v", err, out)
	}
	got := out.Result[0].Message
	kb, _ := json.Marshal(tgbotapi.InlineKeyboardMarkup{InlineKeyboard: [][]tgbotapi.InlineKeyboardButton{
		{tgbotapi.NewInlineKeyboardButtonData("Confirm", "ok:1")},
		{{Text: "Log in", LoginURL: &tgbotapi.LoginURL{URL: "https://shop.example/pair/telegram?x=1"}}},
	}})
	resp, err = http.PostForm(s.URL()+"/bot"+tok+"/sendMessage", url.Values{"chat_id": {strconv.FormatInt(got.Chat.ID, 10)}, "parse_mode": {"HTML"},
		"text": {"PIN <code>123456</code> for " + got.From.LanguageCode + " &lt;script&gt;alert(1)&lt;/script&gt; <b>bold</b> https://shop.example/a"}, "reply_markup": {string(kb)}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sendMessage: %d", resp.StatusCode)
	}
	return nil
}
