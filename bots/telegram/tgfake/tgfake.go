// Package tgfake is an in-process fake of the parts of the Telegram Bot API
// that pairingd's Telegram adapter calls: getMe, getUpdates (long polling
// with offsets), setWebhook / deleteWebhook / getWebhookInfo (and delivery
// of updates to the webhook with the secret token header), sendMessage,
// editMessageText, setMyCommands and answerCallbackQuery.
//
// It checks the token in the URL, validates requests the way Telegram does
// (HTML parse mode, message length, URL buttons, command names) and answers
// failures with Telegram's shapes, for example
//
//	{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}
//
// Point the adapter's api_endpoint at Endpoint().
//
// Tests make one with New; a program (pairingd demo) starts one on its own
// listener with Start and may turn on the web chat (EnableWebChat), a page
// where a person talks to the bot in a browser as in a Telegram client.
package tgfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// SentMessage is one accepted sendMessage or editMessageText.
type SentMessage struct {
	Method    string // "sendMessage" or "editMessageText"
	ChatID    int64
	MessageID int
	Text      string
	ParseMode string
	// Keyboard is the inline keyboard (reply_markup), nil without one.
	Keyboard *tgbotapi.InlineKeyboardMarkup
}

// Buttons lists the inline keyboard's buttons row by row.
func (m SentMessage) Buttons() []tgbotapi.InlineKeyboardButton {
	if m.Keyboard == nil {
		return nil
	}
	var out []tgbotapi.InlineKeyboardButton
	for _, row := range m.Keyboard.InlineKeyboard {
		out = append(out, row...)
	}
	return out
}

// Call is one request the fake received, after the token check.
type Call struct {
	Method string
	Params url.Values
}

// CallbackAnswer is one accepted answerCallbackQuery.
type CallbackAnswer struct {
	CallbackQueryID string
	Text            string
	ShowAlert       bool
}

// Webhook is the registered webhook (setWebhook).
type Webhook struct {
	URL            string
	SecretToken    string
	AllowedUpdates []string
}

// Delivery is one attempt to POST an update to the webhook.
type Delivery struct {
	UpdateID int
	Status   int // 0 when the request failed
	Err      string
}

type failure struct {
	code       int
	retryAfter int
}

type queued struct {
	id        int
	kind      string // message, callback_query, my_chat_member ...
	raw       json.RawMessage
	delivered bool
}

// TB is the part of testing.TB the fake uses: *testing.T and *testing.B
// satisfy it, and the package need not import testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	t     TB // nil when made by Start
	token string
	srv   *http.Server
	ln    net.Listener
	url   string

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	closed      bool
	bot         tgbotapi.User
	queue       []queued
	nextUpdate  int
	nextMessage int
	// nextIncoming numbers the messages users send: they share the chat's
	// message ids with the bot's messages in Telegram, but tests never mix
	// them, so a separate counter keeps them apart.
	nextIncoming int
	pollGen      int
	nextQuery    int
	messages     map[int64]map[int]SentMessage // chat -> message id -> current content
	sent         []SentMessage
	calls        []Call
	answers      []CallbackAnswer
	queries      map[string]bool // callback query ids given out, not yet answered
	commands     map[string][]tgbotapi.BotCommand
	webhook      Webhook
	deliveries   []Delivery
	fail         map[string][]failure
	blocked      map[int64]bool
	allowed      []string
	deliverWake  chan struct{}
	// retryDelay is how long the webhook delivery waits after a failed
	// attempt before trying the same update again.
	retryDelay time.Duration
	lastError  string   // getWebhookInfo's last_error_message
	lastErrAt  int64    // getWebhookInfo's last_error_date
	limits     *limiter // flood limits on sendMessage; nil: off
	stop       context.CancelFunc
	stopCtx    context.Context
	done       chan struct{}
	wg         sync.WaitGroup

	// localButtons lets URL and login_url buttons point at loopback and
	// private addresses, which Telegram refuses (AllowLocalURLs).
	localButtons bool
	// loginDomain is the domain set with BotFather's /setdomain; when not
	// empty, a login_url button elsewhere is refused (SetLoginDomain).
	loginDomain string
	// transcript is every chat as a client shows it, in order.
	transcript map[int64][]entry
	versions   map[int64]int // chat -> changes to its transcript (new or edited messages)
	chat       *webChat      // nil until EnableWebChat
}

// New starts a fake Bot API for one bot token on a free loopback port; it
// stops when the test ends.
func New(t TB, token string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tgfake: %v", err)
	}
	s := start(ln, token, t)
	t.Cleanup(s.Close)
	return s
}

// Start serves a fake Bot API for one bot token on ln until Close.
func Start(ln net.Listener, token string) *Server { return start(ln, token, nil) }

func start(ln net.Listener, token string, t TB) *Server {
	id, _, _ := strings.Cut(token, ":")
	botID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		botID = 777000
	}
	s := &Server{
		t:            t,
		token:        token,
		changed:      make(chan struct{}),
		bot:          tgbotapi.User{ID: botID, IsBot: true, FirstName: "Pairing", UserName: "pairing_test_bot"},
		nextUpdate:   100,
		nextMessage:  1,
		nextIncoming: 1000000,
		messages:     map[int64]map[int]SentMessage{},
		queries:      map[string]bool{},
		commands:     map[string][]tgbotapi.BotCommand{},
		fail:         map[string][]failure{},
		blocked:      map[int64]bool{},
		deliverWake:  make(chan struct{}, 1),
		retryDelay:   50 * time.Millisecond,
		done:         make(chan struct{}),
		transcript:   map[int64][]entry{},
		versions:     map[int64]int{},
		ln:           ln,
		url:          "http://" + ln.Addr().String(),
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fatalf("tgfake: serve: %v", err)
		}
	}()
	go s.deliverLoop()
	return s
}

// fatalf ends the test, or, in a program, panics: it reports misuse of
// the fake (an update that is not JSON), never a request's content.
func (s *Server) fatalf(format string, args ...any) {
	if s.t != nil {
		s.t.Helper()
		s.t.Fatalf(format, args...)
	}
	panic(fmt.Sprintf(format, args...))
}

// AllowLocalURLs makes the fake accept URL and login_url buttons that
// point at localhost or a private address. Telegram refuses them; a demo
// on one machine needs them.
func (s *Server) AllowLocalURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.localButtons = true
}

// Close stops the server and the webhook delivery; pending long polls end.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.stop()
	s.notifyLocked()
	s.mu.Unlock()
	_ = s.srv.Close()
	s.wg.Wait()
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.url }

// Endpoint is the api_endpoint format string: URL()+"/bot%s/%s".
func (s *Server) Endpoint() string { return s.url + "/bot%s/%s" }

// Token is the one token the fake accepts.
func (s *Server) Token() string { return s.token }

// Bot is what getMe answers.
func (s *Server) Bot() tgbotapi.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bot
}

// SetBot changes what getMe answers.
func (s *Server) SetBot(u tgbotapi.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bot = u
}

// notifyLocked wakes long polls and waiters. Callers hold s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	select {
	case s.deliverWake <- struct{}{}:
	default:
	}
}

// PushUpdate queues an update: a tgbotapi.Update (or pointer), or its JSON
// ([]byte, string, json.RawMessage). A zero update_id is replaced by the
// next id. It returns the update_id. With a webhook set the update is
// POSTed to it, otherwise it waits for getUpdates.
func (s *Server) PushUpdate(u any) int {
	if s.t != nil {
		s.t.Helper()
	}
	var raw []byte
	switch v := u.(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	case json.RawMessage:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			s.fatalf("tgfake: PushUpdate: %v", err)
		}
		raw = b
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		s.fatalf("tgfake: PushUpdate: not a JSON object: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := 0
	if v, ok := fields["update_id"]; ok {
		_ = json.Unmarshal(v, &id)
	}
	if id == 0 {
		id = s.nextUpdate
		fields["update_id"] = json.RawMessage(strconv.Itoa(id))
	}
	if id >= s.nextUpdate {
		s.nextUpdate = id + 1
	}
	kind := ""
	for k, v := range fields {
		if k != "update_id" && string(v) != "null" {
			kind = k
		}
	}
	raw, _ = json.Marshal(fields)
	s.queue = append(s.queue, queued{id: id, kind: kind, raw: raw})
	s.notifyLocked()
	return id
}

// Person is a Telegram user who writes to the bot in a private chat (in
// which the chat id is the user id).
type Person struct {
	ID           int64
	FirstName    string
	LastName     string
	Username     string
	LanguageCode string
}

func (p Person) user() *tgbotapi.User {
	return &tgbotapi.User{ID: p.ID, FirstName: p.FirstName, LastName: p.LastName, UserName: p.Username, LanguageCode: p.LanguageCode}
}

func testPerson(id int64, lang string) Person {
	return Person{ID: id, FirstName: "User" + strconv.FormatInt(id, 10), Username: "user" + strconv.FormatInt(id, 10), LanguageCode: lang}
}

func (s *Server) textMessage(chat *tgbotapi.Chat, from *tgbotapi.User, text string) *tgbotapi.Message {
	s.mu.Lock()
	s.nextIncoming++
	id := s.nextIncoming
	s.mu.Unlock()
	m := &tgbotapi.Message{MessageID: id, From: from, Chat: chat, Date: int(time.Now().Unix()), Text: text}
	if strings.HasPrefix(text, "/") {
		cmd, _, _ := strings.Cut(text, " ")
		m.Entities = []tgbotapi.MessageEntity{{Type: "bot_command", Offset: 0, Length: len(utf16(cmd))}}
	}
	return m
}

func utf16(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			out = append(out, 0, 0)
		} else {
			out = append(out, 0)
		}
	}
	return out
}

// UserSends queues a private message from user chatID (in a private chat
// the chat id is the user id) and returns its update_id. A text starting
// with "/" carries a bot_command entity, as Telegram's clients send it.
func (s *Server) UserSends(chatID int64, text, languageCode string) int {
	return s.PersonSends(testPerson(chatID, languageCode), text)
}

// PersonSends is UserSends with the person's names given.
func (s *Server) PersonSends(p Person, text string) int {
	u := p.user()
	m := s.textMessage(&tgbotapi.Chat{ID: p.ID, Type: "private", FirstName: u.FirstName, LastName: u.LastName, UserName: u.UserName}, u, text)
	shown := text
	if strings.HasPrefix(text, "/start ") {
		// A client shows the Start of a t.me link as "/start" alone.
		shown = "/start"
	}
	s.mu.Lock()
	s.recordLocked(p.ID, entry{user: true, text: shown})
	s.mu.Unlock()
	return s.PushUpdate(tgbotapi.Update{Message: m})
}

// GroupSends queues a message from user userID in group chatID (negative).
func (s *Server) GroupSends(chatID, userID int64, text, languageCode string) int {
	return s.PushUpdate(tgbotapi.Update{Message: s.textMessage(&tgbotapi.Chat{ID: chatID, Type: "supergroup", Title: "Group"}, testPerson(userID, languageCode).user(), text)})
}

// UserPresses queues a callback_query: user chatID pressed the button
// carrying data under the bot's message messageID in their private chat.
// It returns the update_id; the query ids are "q1", "q2"...
func (s *Server) UserPresses(chatID int64, messageID int, data, languageCode string) int {
	return s.PersonPresses(testPerson(chatID, languageCode), messageID, data)
}

// PersonPresses is UserPresses with the person's names given.
func (s *Server) PersonPresses(p Person, messageID int, data string) int {
	s.mu.Lock()
	s.nextQuery++
	qid := "q" + strconv.Itoa(s.nextQuery)
	s.queries[qid] = true
	s.mu.Unlock()
	chat := &tgbotapi.Chat{ID: p.ID, Type: "private"}
	return s.PushUpdate(tgbotapi.Update{CallbackQuery: &tgbotapi.CallbackQuery{
		ID: qid, From: p.user(), ChatInstance: "ci" + strconv.FormatInt(p.ID, 10), Data: data,
		Message: &tgbotapi.Message{MessageID: messageID, Chat: chat, Date: int(time.Now().Unix()), From: &tgbotapi.User{ID: s.Bot().ID, IsBot: true}},
	}})
}

// MemberStatus queues a my_chat_member update for the private chat with
// chatID: status "kicked" (the person blocked the bot) or "member" (they
// unblocked or started it).
func (s *Server) MemberStatus(chatID int64, status string) int {
	old := "member"
	if status == "member" {
		old = "kicked"
	}
	bot := s.Bot()
	return s.PushUpdate(tgbotapi.Update{MyChatMember: &tgbotapi.ChatMemberUpdated{
		Chat: tgbotapi.Chat{ID: chatID, Type: "private"}, From: *testPerson(chatID, "").user(), Date: int(time.Now().Unix()),
		OldChatMember: tgbotapi.ChatMember{User: &bot, Status: old},
		NewChatMember: tgbotapi.ChatMember{User: &bot, Status: status},
	}})
}

// Block makes every send to chatID fail with 403 "Forbidden: bot was
// blocked by the user", as after the person blocked the bot.
func (s *Server) Block(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[chatID] = true
}

// Unblock undoes Block.
func (s *Server) Unblock(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blocked, chatID)
}

// FailNext makes the next call of method fail with code: 429 carries
// parameters.retry_after = retryAfter (seconds); 400, 401, 403, 404, 409 and
// 5xx get Telegram's descriptions. Calls stack: two FailNext, two failures.
func (s *Server) FailNext(method string, code, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(method)
	s.fail[m] = append(s.fail[m], failure{code: code, retryAfter: retryAfter})
}

// snapshot copies a recorded list under the lock.
func snapshot[T any](s *Server, list *[]T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]T(nil), *list...)
}

// Sent lists the accepted sendMessage and editMessageText calls in order.
func (s *Server) Sent() []SentMessage { return snapshot(s, &s.sent) }

// WaitSent waits until at least n messages were sent (or edited) and
// returns them all; it fails when ctx ends first.
func (s *Server) WaitSent(ctx context.Context, n int) ([]SentMessage, error) {
	err := s.Wait(ctx, func() bool { return len(s.sent) >= n })
	sent := s.Sent()
	if err != nil {
		return sent, fmt.Errorf("tgfake: %d of %d messages sent: %w", len(sent), n, err)
	}
	return sent, nil
}

// Wait blocks until cond (called under the fake's lock, so it must not call
// the Server) holds or ctx ends. Tests use it to wait for a state.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Calls lists the requests to method ("" for all), oldest first.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || strings.EqualFold(c.Method, method) {
			out = append(out, c)
		}
	}
	return out
}

// CallCount counts the requests to method.
func (s *Server) CallCount(method string) int { return len(s.Calls(method)) }

// CallbackAnswers lists the accepted answerCallbackQuery calls.
func (s *Server) CallbackAnswers() []CallbackAnswer { return snapshot(s, &s.answers) }

// Commands returns the command lists set by setMyCommands, by
// language_code ("" for the default).
func (s *Server) Commands() map[string][]tgbotapi.BotCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]tgbotapi.BotCommand{}
	for k, v := range s.commands {
		out[k] = append([]tgbotapi.BotCommand(nil), v...)
	}
	return out
}

// Webhook returns the registered webhook; URL is empty when none is set.
func (s *Server) Webhook() Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhook
	w.AllowedUpdates = append([]string(nil), w.AllowedUpdates...)
	return w
}

// Deliveries lists the attempts to POST updates to the webhook.
func (s *Server) Deliveries() []Delivery { return snapshot(s, &s.deliveries) }

// Pending counts the updates not yet confirmed (polling) or not yet
// accepted by the webhook.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// SentTo lists the accepted sendMessage and editMessageText calls for one
// chat, in order.
func (s *Server) SentTo(chatID int64) []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SentMessage
	for _, m := range s.sent {
		if m.ChatID == chatID {
			out = append(out, m)
		}
	}
	return out
}

// WaitIdle waits until every queued update was confirmed (polling: a
// later getUpdates offset passed it) or accepted by the webhook: the bot
// has handled everything it was sent.
func (s *Server) WaitIdle(ctx context.Context) error {
	return s.Wait(ctx, func() bool { return len(s.queue) == 0 })
}
