package tgfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// apiError is a refusal in Telegram's shape.
type apiError struct {
	code        int
	description string
	retryAfter  int
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, description: "Bad Request: " + fmt.Sprintf(format, args...)}
}

// telegramError is the description Telegram gives for a failure code.
func telegramError(code, retryAfter int) *apiError {
	e := &apiError{code: code}
	switch code {
	case http.StatusBadRequest:
		e.description = "Bad Request: chat not found"
	case http.StatusUnauthorized:
		e.description = "Unauthorized"
	case http.StatusForbidden:
		e.description = "Forbidden: bot was blocked by the user"
	case http.StatusNotFound:
		e.description = "Not Found"
	case http.StatusConflict:
		e.description = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	case http.StatusTooManyRequests:
		e.description = "Too Many Requests: retry after " + strconv.Itoa(retryAfter)
		e.retryAfter = retryAfter
	default:
		e.description = http.StatusText(code)
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"ok": false, "error_code": e.code, "description": e.description}
	if e.retryAfter > 0 {
		body["parameters"] = map[string]any{"retry_after": e.retryAfter}
	}
	writeJSON(w, e.code, body)
}

func writeResult(w http.ResponseWriter, result any, description string) {
	body := map[string]any{"ok": true, "result": result}
	if description != "" {
		body["description"] = description
	}
	writeJSON(w, http.StatusOK, body)
}

// params reads a request's parameters the ways the Bot API accepts them:
// query string, urlencoded or multipart form, or a JSON object.
func params(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			return nil, err
		}
		v := r.URL.Query()
		for k, raw := range m {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				v.Set(k, s)
			} else {
				v.Set(k, string(raw))
			}
		}
		return v, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, err
		}
		return r.Form, nil
	default:
		r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.Form, nil
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || method == "" {
		s.mu.Lock()
		chat := s.chat
		s.mu.Unlock()
		if chat != nil {
			chat.ServeHTTP(w, r)
			return
		}
		writeError(w, telegramError(http.StatusNotFound, 0))
		return
	}
	if token != s.token {
		writeError(w, telegramError(http.StatusUnauthorized, 0))
		return
	}
	p, err := params(r)
	if err != nil {
		writeError(w, badRequest("invalid request parameters"))
		return
	}
	method = strings.ToLower(method)

	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: canonical(method), Params: p})
	if f := s.fail[method]; len(f) > 0 {
		s.fail[method] = f[1:]
		s.notifyLocked()
		s.mu.Unlock()
		writeError(w, telegramError(f[0].code, f[0].retryAfter))
		return
	}
	s.notifyLocked()
	s.mu.Unlock()

	if method == "getupdates" {
		s.getUpdates(w, r, p)
		return
	}
	s.mu.Lock()
	result, desc, apiErr := s.call(method, p)
	if apiErr == nil {
		s.notifyLocked()
	}
	s.mu.Unlock()
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	writeResult(w, result, desc)
}

var methodNames = []string{"getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo",
	"sendMessage", "editMessageText", "setMyCommands", "answerCallbackQuery"}

func canonical(lower string) string {
	for _, m := range methodNames {
		if strings.EqualFold(m, lower) {
			return m
		}
	}
	return lower
}

// call runs every method but getUpdates. Callers hold s.mu.
func (s *Server) call(method string, p url.Values) (any, string, *apiError) {
	switch method {
	case "getme":
		return s.bot, "", nil
	case "setwebhook":
		return s.setWebhook(p)
	case "deletewebhook":
		s.webhook = Webhook{}
		if p.Get("drop_pending_updates") == "true" {
			s.queue = nil
		}
		return true, "Webhook was deleted", nil
	case "getwebhookinfo":
		info := map[string]any{"url": s.webhook.URL, "has_custom_certificate": false, "pending_update_count": len(s.queue)}
		if len(s.webhook.AllowedUpdates) > 0 {
			info["allowed_updates"] = s.webhook.AllowedUpdates
		}
		if s.lastErrAt != 0 {
			info["last_error_date"], info["last_error_message"] = s.lastErrAt, s.lastError
		}
		return info, "", nil
	case "sendmessage":
		return s.sendMessage(p)
	case "editmessagetext":
		return s.editMessageText(p)
	case "setmycommands":
		return s.setMyCommands(p)
	case "answercallbackquery":
		id := p.Get("callback_query_id")
		if !s.queries[id] {
			return nil, "", badRequest("query is too old and response timeout expired or query ID is invalid")
		}
		if n := len([]rune(p.Get("text"))); n > 200 {
			return nil, "", badRequest("MESSAGE_TOO_LONG")
		}
		delete(s.queries, id)
		s.answers = append(s.answers, CallbackAnswer{CallbackQueryID: id, Text: p.Get("text"), ShowAlert: p.Get("show_alert") == "true"})
		return true, "", nil
	}
	return nil, "", telegramError(http.StatusNotFound, 0)
}

var secretToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (s *Server) setWebhook(p url.Values) (any, string, *apiError) {
	raw := p.Get("url")
	if raw == "" {
		s.webhook = Webhook{}
		return true, "Webhook was deleted", nil
	}
	u, err := url.Parse(raw)
	// Telegram wants HTTPS on port 443, 80, 88 or 8443; the fake also takes
	// plain http on any port so tests can use httptest servers.
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", badRequest("bad webhook: An HTTPS URL must be provided for webhook")
	}
	secret := p.Get("secret_token")
	if secret != "" && !secretToken.MatchString(secret) {
		return nil, "", badRequest("secret token contains unallowed characters")
	}
	var allowed []string
	if a := p.Get("allowed_updates"); a != "" && a != "null" {
		if err := json.Unmarshal([]byte(a), &allowed); err != nil {
			return nil, "", badRequest("can't parse allowed updates JSON object")
		}
		s.allowed = allowed
	}
	if p.Get("drop_pending_updates") == "true" {
		s.queue = nil
	}
	s.webhook = Webhook{URL: raw, SecretToken: secret, AllowedUpdates: allowed}
	return true, "Webhook was set", nil
}

func (s *Server) chatID(p url.Values) (int64, *apiError) {
	id, err := strconv.ParseInt(p.Get("chat_id"), 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("chat not found")
	}
	if s.blocked[id] {
		return 0, telegramError(http.StatusForbidden, 0)
	}
	return id, nil
}

// checkText validates a message text like Telegram does.
func checkText(p url.Values) (string, string, *apiError) {
	text, mode := p.Get("text"), p.Get("parse_mode")
	visible := text
	switch strings.ToLower(mode) {
	case "":
	case "html":
		if err := CheckHTML(text); err != nil {
			return "", "", badRequest("can't parse entities: %v", err)
		}
		visible = Visible(text)
	case "markdown", "markdownv2":
	default:
		return "", "", badRequest("unsupported parse_mode")
	}
	if strings.TrimSpace(visible) == "" {
		return "", "", badRequest("message text is empty")
	}
	if len(utf16(visible)) > 4096 {
		return "", "", badRequest("message is too long")
	}
	return text, mode, nil
}

// keyboard parses and checks reply_markup; only inline keyboards are kept.
// Callers hold s.mu.
func (s *Server) keyboard(p url.Values) (*tgbotapi.InlineKeyboardMarkup, *apiError) {
	raw := p.Get("reply_markup")
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var kb tgbotapi.InlineKeyboardMarkup
	if err := json.Unmarshal([]byte(raw), &kb); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if kb.InlineKeyboard == nil {
		return nil, nil
	}
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			if b.Text == "" {
				return nil, badRequest("BUTTON_TEXT_INVALID")
			}
			switch {
			case b.URL != nil:
				if !buttonURLOK(*b.URL, s.localButtons) {
					return nil, badRequest("inline keyboard button URL '%s' is invalid: Wrong HTTP URL", *b.URL)
				}
			case b.LoginURL != nil:
				if e := s.checkLoginURL(b.LoginURL.URL); e != nil {
					return nil, e
				}
			case b.CallbackData != nil:
				if n := len(*b.CallbackData); n < 1 || n > 64 {
					return nil, badRequest("BUTTON_DATA_INVALID")
				}
			}
		}
	}
	return &kb, nil
}

// checkLoginURL: a login_url must be an http(s) URL (its host is checked
// against the bot's domain by checkLoginButtonsLocked). Loopback hosts
// pass, so tests can point it at a service on 127.0.0.1.
func (s *Server) checkLoginURL(raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return badRequest("inline keyboard button login URL '%s' is invalid", raw)
	}
	return nil
}

// buttonURLOK: Telegram refuses URL buttons that point at localhost or a
// loopback or private address (unless local is set), and anything not
// http(s) or tg.
func buttonURLOK(raw string, local bool) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "tg":
		return true
	case "http", "https":
	default:
		return false
	}
	host := u.Hostname()
	if host != "" && local {
		return true
	}
	if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified()) {
		return false
	}
	return true
}

func (s *Server) chatType(id int64) string {
	if id > 0 {
		return "private"
	}
	return "supergroup"
}

func (s *Server) sendMessage(p url.Values) (any, string, *apiError) {
	chat, e := s.chatID(p)
	if e != nil {
		return nil, "", e
	}
	text, mode, e := checkText(p)
	if e != nil {
		return nil, "", e
	}
	kb, e := s.keyboard(p)
	if e != nil {
		return nil, "", e
	}
	if e := s.checkLoginButtonsLocked(kb); e != nil {
		return nil, "", e
	}
	if e := s.rateLimitLocked(p); e != nil {
		return nil, "", e
	}
	id := s.nextMessage
	s.nextMessage++
	m := SentMessage{Method: "sendMessage", ChatID: chat, MessageID: id, Text: text, ParseMode: mode, Keyboard: kb}
	if s.messages[chat] == nil {
		s.messages[chat] = map[int]SentMessage{}
	}
	s.messages[chat][id] = m
	s.sent = append(s.sent, m)
	s.recordLocked(chat, entry{messageID: id})
	return s.resultMessage(m), "", nil
}

func (s *Server) editMessageText(p url.Values) (any, string, *apiError) {
	if p.Get("inline_message_id") != "" {
		return nil, "", badRequest("MESSAGE_ID_INVALID")
	}
	chat, e := s.chatID(p)
	if e != nil {
		return nil, "", e
	}
	id, _ := strconv.Atoi(p.Get("message_id"))
	old, ok := s.messages[chat][id]
	if !ok {
		return nil, "", badRequest("message to edit not found")
	}
	text, mode, e := checkText(p)
	if e != nil {
		return nil, "", e
	}
	kb, e := s.keyboard(p)
	if e != nil {
		return nil, "", e
	}
	if old.Text == text && sameKeyboard(old.Keyboard, kb) {
		return nil, "", badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	m := SentMessage{Method: "editMessageText", ChatID: chat, MessageID: id, Text: text, ParseMode: mode, Keyboard: kb}
	s.messages[chat][id] = m
	s.sent = append(s.sent, m)
	s.versions[chat]++
	return s.resultMessage(m), "", nil
}

func sameKeyboard(a, b *tgbotapi.InlineKeyboardMarkup) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (s *Server) resultMessage(m SentMessage) map[string]any {
	out := map[string]any{
		"message_id": m.MessageID,
		"from":       s.bot,
		"chat":       map[string]any{"id": m.ChatID, "type": s.chatType(m.ChatID)},
		"date":       time.Now().Unix(),
		"text":       Visible(m.Text),
	}
	if m.Keyboard != nil {
		out["reply_markup"] = m.Keyboard
	}
	return out
}

var (
	commandName = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	langCode    = regexp.MustCompile(`^[a-z]{2}$`)
)

func (s *Server) setMyCommands(p url.Values) (any, string, *apiError) {
	var cmds []tgbotapi.BotCommand
	if err := json.Unmarshal([]byte(p.Get("commands")), &cmds); err != nil {
		return nil, "", badRequest("can't parse commands JSON object")
	}
	if len(cmds) > 100 {
		return nil, "", badRequest("BOT_COMMANDS_TOO_MUCH")
	}
	for _, c := range cmds {
		if !commandName.MatchString(c.Command) {
			return nil, "", badRequest("BOT_COMMAND_INVALID")
		}
		if n := len([]rune(c.Description)); n < 1 || n > 256 {
			return nil, "", badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	lang := p.Get("language_code")
	if lang != "" && !langCode.MatchString(lang) {
		return nil, "", badRequest("LANG_CODE_INVALID")
	}
	s.commands[lang] = cmds
	return true, "", nil
}

// getUpdates long-polls: it answers at once when updates are waiting,
// otherwise when one arrives or the timeout passes. As in the Bot API an
// update is confirmed (dropped) by a later call whose offset is above its
// id; the fake only confirms updates it has handed out, so an id sequence
// that restarts lower (Telegram picks a random id after a week without
// updates) is still delivered. A newer getUpdates ends an older waiting one
// with 409, like two bot instances polling.
func (s *Server) getUpdates(w http.ResponseWriter, r *http.Request, p url.Values) {
	offset, _ := strconv.Atoi(p.Get("offset"))
	limit, _ := strconv.Atoi(p.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, _ := strconv.Atoi(p.Get("timeout"))
	deadline := time.NewTimer(time.Duration(max(timeout, 0)) * time.Second)
	defer deadline.Stop()

	s.mu.Lock()
	if s.webhook.URL != "" {
		s.mu.Unlock()
		writeError(w, &apiError{code: http.StatusConflict, description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"})
		return
	}
	if a := p.Get("allowed_updates"); a != "" && a != "null" {
		var allowed []string
		if err := json.Unmarshal([]byte(a), &allowed); err != nil {
			s.mu.Unlock()
			writeError(w, badRequest("can't parse allowed updates JSON object"))
			return
		}
		s.allowed = allowed
	}
	s.pollGen++
	gen := s.pollGen
	s.confirmLocked(offset)
	s.notifyLocked()
	s.mu.Unlock()

	for {
		s.mu.Lock()
		if gen != s.pollGen {
			s.mu.Unlock()
			writeError(w, telegramError(http.StatusConflict, 0))
			return
		}
		out := s.takeLocked(limit)
		ch := s.changed
		closed := s.closed
		s.mu.Unlock()
		if len(out) > 0 || closed {
			writeResult(w, out, "")
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			writeResult(w, []json.RawMessage{}, "")
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) confirmLocked(offset int) {
	switch {
	case offset > 0:
		s.queue = slices.DeleteFunc(s.queue, func(q queued) bool { return q.delivered && q.id < offset })
	case offset < 0:
		if keep := -offset; len(s.queue) > keep {
			s.queue = append([]queued(nil), s.queue[len(s.queue)-keep:]...)
		}
	}
}

// takeLocked hands out up to limit queued updates of the allowed types;
// updates of other types are dropped, as Telegram never sends them.
func (s *Server) takeLocked(limit int) []json.RawMessage {
	if len(s.allowed) > 0 {
		s.queue = slices.DeleteFunc(s.queue, func(q queued) bool { return !slices.Contains(s.allowed, q.kind) })
	}
	out := []json.RawMessage{}
	for i := range s.queue {
		if len(out) == limit {
			break
		}
		s.queue[i].delivered = true
		out = append(out, s.queue[i].raw)
	}
	return out
}
