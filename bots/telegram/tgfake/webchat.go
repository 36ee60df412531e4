package tgfake

import (
	"cmp"
	"context"
	"embed"
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// The web chat: a page where a person talks to the bot in a browser, as in
// a Telegram client. It serves, next to the Bot API on the same address:
//
//	GET  /chat                  the chat: messages, inline buttons, a text box
//	POST /chat/send             the person sends text (a command or anything)
//	POST /chat/press            the person presses a callback button
//	GET  /chat/login            the person presses a login_url button: a redirect to its URL with signed data
//	POST /chat/new-person       start again as another person
//	GET  /chat/messages         the messages alone (the page's script swaps them in)
//	GET  /chat/version          a number that changes when the chat changes
//	GET  /<bot username>?start= what https://t.me/<bot>?start= opens: the chat with a Start button
//
// Each browser is one person (a cookie holds the Telegram user id); the
// person's language_code is the browser's first Accept-Language. It is
// a stand-in for trying things on one machine, not a security boundary.

//go:embed webchat
var webchatFS embed.FS

// WebChatConfig sets what the web chat shows.
type WebChatConfig struct {
	// Title heads the page; default "Telegram (stand-in)".
	Title string
	// FirstNames are given in turn to new people; default a short list.
	FirstNames []string
}

type webChat struct {
	s     *Server
	cfg   WebChatConfig
	pages *template.Template

	mu     sync.Mutex
	people map[int64]Person
	next   int64
}

const personCookie = "tgfake_person"

// EnableWebChat serves the web chat on the fake's address (URL()).
func (s *Server) EnableWebChat(cfg WebChatConfig) error {
	cfg.Title = cmp.Or(cfg.Title, "Telegram (stand-in)")
	if len(cfg.FirstNames) == 0 {
		cfg.FirstNames = []string{"Ann", "Boris", "Chloé", "Dmitri", "Eva", "Farid"}
	}
	pages, err := template.New("chat").Funcs(template.FuncMap{"tr": tr, "initial": initial, "list": list}).ParseFS(webchatFS, "webchat/*.html")
	if err != nil {
		return err
	}
	c := &webChat{s: s, cfg: cfg, pages: pages, people: map[int64]Person{}, next: 5550001}
	s.mu.Lock()
	s.chat = c
	s.mu.Unlock()
	return nil
}

func (c *webChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	switch p := r.URL.Path; {
	case p == "/" && r.Method == http.MethodGet:
		http.Redirect(w, r, "/chat", http.StatusSeeOther)
	case p == "/chat" && r.Method == http.MethodGet:
		c.page(w, r, "")
	case p == "/chat/messages" && r.Method == http.MethodGet:
		c.fragment(w, r)
	case p == "/chat/version" && r.Method == http.MethodGet:
		c.version(w, r)
	case p == "/chat/send" && r.Method == http.MethodPost:
		c.send(w, r)
	case p == "/chat/press" && r.Method == http.MethodPost:
		c.press(w, r)
	case p == "/chat/login" && r.Method == http.MethodGet:
		c.login(w, r)
	case p == "/chat/new-person" && r.Method == http.MethodPost:
		c.newPerson(w, r)
	case strings.HasPrefix(p, "/chat/assets/") && r.Method == http.MethodGet:
		c.asset(w, r)
	case r.Method == http.MethodGet && strings.EqualFold(strings.TrimPrefix(p, "/"), c.s.Bot().UserName):
		// https://t.me/<bot>?start=<param>: Telegram accepts 1-64 of
		// A-Z a-z 0-9 _ - and drops anything else.
		start := r.URL.Query().Get("start")
		if !startParam.MatchString(start) {
			start = ""
		}
		c.page(w, r, start)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

var startParam = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// person is the browser's person, made (and the cookie set) on the first
// page view. Only GETs of the page make one; the other routes need it.
func (c *webChat) person(w http.ResponseWriter, r *http.Request, create bool) (Person, bool) {
	lang := language(r.Header.Get("Accept-Language"))
	if ck, err := r.Cookie(personCookie); err == nil {
		if id, err := strconv.ParseInt(ck.Value, 10, 64); err == nil {
			c.mu.Lock()
			p, ok := c.people[id]
			c.mu.Unlock()
			if ok {
				p.LanguageCode = lang
				return p, true
			}
		}
	}
	if !create {
		return Person{}, false
	}
	return c.makePerson(w, lang), true
}

func (c *webChat) makePerson(w http.ResponseWriter, lang string) Person {
	c.mu.Lock()
	id := c.next
	c.next++
	name := c.cfg.FirstNames[int(id)%len(c.cfg.FirstNames)]
	p := Person{ID: id, FirstName: name, Username: strings.ToLower(asciiOnly(name)) + strconv.FormatInt(id%10000, 10)}
	c.people[id] = p
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: personCookie, Value: strconv.FormatInt(id, 10), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	p.LanguageCode = lang
	return p
}

func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 {
			return r
		}
		return -1
	}, s)
}

// language is the first tag of Accept-Language, lower case, as Telegram's
// language_code ("ru", "zh-tw"); "" without one.
func language(accept string) string {
	first, _, _ := strings.Cut(accept, ",")
	first, _, _ = strings.Cut(first, ";")
	first = strings.ToLower(strings.TrimSpace(first))
	if first == "*" || len(first) > 16 {
		return ""
	}
	return first
}

// sameOrigin refuses a POST another page made: browsers say where a
// request comes from in Sec-Fetch-Site (and in Origin, which is "null"
// under Referrer-Policy no-referrer). A client that sends neither (a test
// with net/http) is let through.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

type chatView struct {
	Title   string
	Lang    string
	Bot     tgbotapi.User
	Person  Person
	Start   string
	Version int
	Items   []itemView
}

type itemView struct {
	Mine   bool
	ID     int
	HTML   template.HTML
	Rows   [][]buttonView
	Edited bool
	Last   bool
}

type buttonView struct {
	Text     string
	Callback string // callback_data: a POST to /chat/press
	URL      string // url: a link
	Login    string // login_url: a link to /chat/login
}

func (c *webChat) view(p Person, start string) chatView {
	c.s.mu.Lock()
	items := c.s.transcriptLocked(p.ID)
	bot := c.s.bot
	version := c.s.versions[p.ID]
	c.s.mu.Unlock()
	v := chatView{Title: c.cfg.Title, Lang: p.LanguageCode, Bot: bot, Person: p, Start: start, Version: version}
	for _, it := range items {
		if it.FromPerson {
			v.Items = append(v.Items, itemView{Mine: true, HTML: formatText(it.Text, "")})
			continue
		}
		iv := itemView{ID: it.Bot.MessageID, HTML: formatText(it.Bot.Text, it.Bot.ParseMode), Edited: it.Bot.Method == "editMessageText"}
		if it.Bot.Keyboard != nil {
			for r, row := range it.Bot.Keyboard.InlineKeyboard {
				var out []buttonView
				for col, b := range row {
					bv := buttonView{Text: b.Text}
					switch {
					case b.CallbackData != nil:
						bv.Callback = *b.CallbackData
					case b.URL != nil:
						bv.URL = *b.URL
					case b.LoginURL != nil:
						bv.Login = "/chat/login?message=" + strconv.Itoa(it.Bot.MessageID) + "&row=" + strconv.Itoa(r) + "&col=" + strconv.Itoa(col)
					}
					out = append(out, bv)
				}
				iv.Rows = append(iv.Rows, out)
			}
		}
		v.Items = append(v.Items, iv)
	}
	if n := len(v.Items); n > 0 {
		v.Items[n-1].Last = true
	}
	return v
}

func (c *webChat) page(w http.ResponseWriter, r *http.Request, start string) {
	p, _ := c.person(w, r, true)
	c.render(w, "chat.html", c.view(p, start))
}

// known is the person of a route the page calls; without one it
// answers 403.
func (c *webChat) known(w http.ResponseWriter, r *http.Request) (Person, bool) {
	p, ok := c.person(w, r, false)
	if !ok {
		http.Error(w, "open /chat first", http.StatusForbidden)
	}
	return p, ok
}

func (c *webChat) fragment(w http.ResponseWriter, r *http.Request) {
	if p, ok := c.known(w, r); ok {
		c.render(w, "messages.html", c.view(p, ""))
	}
}

func (c *webChat) version(w http.ResponseWriter, r *http.Request) {
	p, ok := c.known(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(strconv.Itoa(c.s.ChatVersion(p.ID))))
}

func (c *webChat) render(w http.ResponseWriter, name string, v chatView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.pages.ExecuteTemplate(w, name, v); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
	}
}

// postPerson is the person of a POST, or an answer saying why not.
func (c *webChat) postPerson(w http.ResponseWriter, r *http.Request) (Person, bool) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return Person{}, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return Person{}, false
	}
	return c.known(w, r)
}

// replyWait is how long a POST waits for the bot's answer before showing
// the chat, so that a browser without script sees the answer at once.
const replyWait = 3 * time.Second

// waitChange waits until the chat's version passes v or replyWait ends.
func (c *webChat) waitChange(ctx context.Context, chat int64, v int) {
	ctx, cancel := context.WithTimeout(ctx, replyWait)
	defer cancel()
	_ = c.s.Wait(ctx, func() bool { return c.s.versions[chat] > v })
}

func (c *webChat) send(w http.ResponseWriter, r *http.Request) {
	p, ok := c.postPerson(w, r)
	if !ok {
		return
	}
	text := strings.TrimSpace(r.PostForm.Get("text"))
	if text == "" || len(utf16(text)) > 4096 {
		http.Redirect(w, r, "/chat", http.StatusSeeOther)
		return
	}
	v := c.s.ChatVersion(p.ID) + 1 // the person's own line
	c.s.PersonSends(p, text)
	c.waitChange(r.Context(), p.ID, v)
	http.Redirect(w, r, "/chat#latest", http.StatusSeeOther)
}

func (c *webChat) press(w http.ResponseWriter, r *http.Request) {
	p, ok := c.postPerson(w, r)
	if !ok {
		return
	}
	id, _ := strconv.Atoi(r.PostForm.Get("message"))
	data := r.PostForm.Get("data")
	// A client can only press a button the message carries now.
	if _, ok := c.button(p.ID, id, func(b tgbotapi.InlineKeyboardButton) bool {
		return b.CallbackData != nil && *b.CallbackData == data
	}); !ok {
		http.Error(w, "that button is not in the chat (any more)", http.StatusBadRequest)
		return
	}
	v := c.s.ChatVersion(p.ID)
	c.s.PersonPresses(p, id, data)
	c.waitChange(r.Context(), p.ID, v)
	http.Redirect(w, r, "/chat#latest", http.StatusSeeOther)
}

// button finds the first button of message id in chat that match accepts.
func (c *webChat) button(chat int64, id int, match func(tgbotapi.InlineKeyboardButton) bool) (tgbotapi.InlineKeyboardButton, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	m, ok := c.s.messages[chat][id]
	if !ok || m.Keyboard == nil {
		return tgbotapi.InlineKeyboardButton{}, false
	}
	for _, row := range m.Keyboard.InlineKeyboard {
		for _, b := range row {
			if match(b) {
				return b, true
			}
		}
	}
	return tgbotapi.InlineKeyboardButton{}, false
}

func (c *webChat) login(w http.ResponseWriter, r *http.Request) {
	p, ok := c.known(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	id, _ := strconv.Atoi(q.Get("message"))
	row, _ := strconv.Atoi(q.Get("row"))
	col, _ := strconv.Atoi(q.Get("col"))
	c.s.mu.Lock()
	m := c.s.messages[p.ID][id]
	c.s.mu.Unlock()
	if m.Keyboard == nil || row < 0 || row >= len(m.Keyboard.InlineKeyboard) || col < 0 || col >= len(m.Keyboard.InlineKeyboard[row]) ||
		m.Keyboard.InlineKeyboard[row][col].LoginURL == nil {
		http.Error(w, "that button is not in the chat (any more)", http.StatusBadRequest)
		return
	}
	to, err := c.s.LoginURL(m.Keyboard.InlineKeyboard[row][col].LoginURL.URL, p, time.Now())
	if err != nil {
		http.Error(w, "the button's URL does not parse", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

func (c *webChat) newPerson(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	c.makePerson(w, language(r.Header.Get("Accept-Language")))
	http.Redirect(w, r, "/chat", http.StatusSeeOther)
}

func (c *webChat) asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/chat/assets/")
	b, err := fs.ReadFile(webchatFS, "webchat/"+name)
	if err != nil || strings.Contains(name, "/") || strings.HasSuffix(name, ".html") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

var bareURL = regexp.MustCompile(`https?://[^\s<>"]+`)

// formatText turns a message text into safe HTML as a client shows it:
// in HTML parse mode Telegram's tags are kept (without attributes, but an
// <a>'s http(s) href), other text is escaped, and bare URLs become links.
func formatText(text, mode string) template.HTML {
	var b strings.Builder
	if !strings.EqualFold(mode, "html") {
		linkify(&b, text)
		return template.HTML(b.String())
	}
	inLink := false
	for text != "" {
		i := strings.IndexByte(text, '<')
		if i < 0 {
			i = len(text)
		}
		if seg := html.UnescapeString(text[:i]); inLink {
			b.WriteString(html.EscapeString(seg))
		} else {
			linkify(&b, seg)
		}
		text = text[i:]
		if text == "" {
			break
		}
		end := strings.IndexByte(text, '>')
		if end < 0 {
			b.WriteString(html.EscapeString(text))
			break
		}
		tag := text[1:end]
		text = text[end+1:]
		closing := strings.HasPrefix(tag, "/")
		name := strings.ToLower(strings.TrimPrefix(tag, "/"))
		if j := strings.IndexAny(name, " \t\n"); j >= 0 {
			name = name[:j]
		}
		switch name {
		case "b", "strong", "i", "em", "u", "s", "code", "pre", "blockquote":
			if closing {
				b.WriteString("</" + name + ">")
			} else {
				b.WriteString("<" + name + ">")
			}
		case "a":
			if closing {
				if inLink {
					b.WriteString("</a>")
				}
				inLink = false
				continue
			}
			if href := hrefOf(tag); href != "" {
				b.WriteString(`<a href="` + html.EscapeString(href) + `" target="_blank" rel="noopener noreferrer">`)
				inLink = true
			}
		}
	}
	if inLink {
		b.WriteString("</a>")
	}
	return template.HTML(b.String())
}

var hrefAttr = regexp.MustCompile(`href\s*=\s*"([^"]*)"`)

func hrefOf(tag string) string {
	m := hrefAttr.FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	href := html.UnescapeString(m[1])
	if u, err := url.Parse(href); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return href
}

// linkify writes plain text escaped, with its http(s) URLs as links.
func linkify(b *strings.Builder, s string) {
	last := 0
	for _, loc := range bareURL.FindAllStringIndex(s, -1) {
		b.WriteString(html.EscapeString(s[last:loc[0]]))
		u := html.EscapeString(s[loc[0]:loc[1]])
		b.WriteString(`<a href="` + u + `" target="_blank" rel="noopener noreferrer">` + u + `</a>`)
		last = loc[1]
	}
	b.WriteString(html.EscapeString(s[last:]))
}
