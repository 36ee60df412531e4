package main

import (
	"bufio"
	"bytes"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoRun is a running `pairingd demo`.
type demoRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	tmp    string // its TMPDIR
	site   string // the URL it printed
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

var demoURL = regexp.MustCompile(`^\s+(http://127\.0\.0\.1:[0-9]+)/\s*$`)

// startDemo runs the real binary's demo and waits for the one URL it
// prints; the test's end stops it with SIGINT, as Ctrl-C does.
func startDemo(t *testing.T) *demoRun {
	t.Helper()
	d := &demoRun{t: t, tmp: t.TempDir(), done: make(chan error, 1)}
	d.cmd = exec.Command(binPath, "demo", "--log-level", "info")
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + d.tmp, "TMPDIR=" + d.tmp}
	d.cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.stderr}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	var printed bytes.Buffer
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			printed.WriteString(sc.Text() + "\n")
			if m := demoURL.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() { d.stop() })
	select {
	case d.site = <-urls:
	case err := <-d.done:
		t.Fatalf("pairingd demo exited: %v\n%s", err, d.logs())
	case <-time.After(90 * time.Second):
		t.Fatalf("pairingd demo printed no URL\n%s", d.logs())
	}
	return d
}

func (d *demoRun) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// stop sends SIGINT and checks that the demo exits 0 and leaves no
// temporary files behind.
func (d *demoRun) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("pairingd demo after Ctrl-C: %v\n%s", err, d.logs())
		}
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		d.t.Errorf("pairingd demo did not stop on Ctrl-C\n%s", d.logs())
		return
	}
	left, _ := filepath.Glob(filepath.Join(d.tmp, "pairingd-demo-*"))
	if len(left) > 0 {
		d.t.Errorf("the demo left %v behind", left)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// web is a browser without script: it keeps cookies, follows redirects
// and sends the forms it is shown.
type web struct {
	t    *testing.T
	c    *http.Client
	lang string
	url  string // the page it shows
	body string
}

func newWeb(t *testing.T, lang string) *web {
	jar, _ := cookiejar.New(nil)
	return &web{t: t, lang: lang, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

func (w *web) do(method, u string, form url.Values) *web {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", w.lang)
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	w.url, w.body = resp.Request.URL.String(), string(b)
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("%s %s: %d at %s\n%s", method, u, resp.StatusCode, w.url, w.body)
	}
	return w
}

func (w *web) get(u string) *web { return w.do(http.MethodGet, u, nil) }

// hasForm tells whether the page has a form to action holding needle.
func (w *web) hasForm(action, needle string) bool {
	for _, f := range formRE.FindAllStringSubmatch(w.body, -1) {
		if html.UnescapeString(f[1]) == action && strings.Contains(html.UnescapeString(f[2]), needle) {
			return true
		}
	}
	return false
}

// submit sends the page's form whose action is action and which holds
// needle (a button label or a field value), with its hidden fields and
// extra.
func (w *web) submit(action, needle string, extra url.Values) *web {
	w.t.Helper()
	// The bot answers through a queue: a web chat page may have been drawn
	// before the answer (or after another message, such as a link notice,
	// that came first). Look again for a while before giving up.
	for deadline := time.Now().Add(5 * time.Second); !w.hasForm(action, needle) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		w.get(w.url)
	}
	for _, f := range formRE.FindAllStringSubmatch(w.body, -1) {
		if html.UnescapeString(f[1]) != action || !strings.Contains(html.UnescapeString(f[2]), needle) {
			continue
		}
		v := url.Values{}
		for _, in := range hiddenRE.FindAllStringSubmatch(f[2], -1) {
			v.Set(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
		}
		for k, vs := range extra {
			v[k] = vs
		}
		base, _ := url.Parse(w.url)
		to, _ := base.Parse(html.UnescapeString(action))
		return w.do(http.MethodPost, to.String(), v)
	}
	w.t.Fatalf("no form to %s with %q on %s:\n%s", action, needle, w.url, w.body)
	return w
}

// link is the href of the first <a> with id.
func (w *web) link(id string) string {
	w.t.Helper()
	m := regexp.MustCompile(`<a [^>]*href="([^"]+)"[^>]*id="` + id + `"|<a [^>]*id="` + id + `"[^>]*href="([^"]+)"`).FindStringSubmatch(w.body)
	if m == nil {
		w.t.Fatalf("no link #%s on %s:\n%s", id, w.url, w.body)
	}
	return html.UnescapeString(m[1] + m[2])
}

var (
	formRE   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	// The sign-in page's button that opens the bot (the demo points
	// deep links at the stand-in's web chat).
	chatDeepLink = regexp.MustCompile(`href="(http://127\.0\.0\.1:[0-9]+/example_shop_bot\?start=[A-Za-z0-9_-]+)"`)
)

// waitFor reloads u until its page contains want.
func (w *web) waitFor(u, want string) *web {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		w.get(u)
		if strings.Contains(w.body, want) {
			return w
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s never showed %q:\n%s", u, want, w.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemoSignIn runs `pairingd demo` and walks its printed URL over
// HTTP, as a browser without script and a phone with the web chat: sign
// in with Telegram (deep link, confirmed in the chat), create the account,
// unlink in the chat, connect Telegram again from the site, send a test
// notification, sign out.
func TestDemoSignIn(t *testing.T) {
	d := startDemo(t)
	browser, phone := newWeb(t, "en"), newWeb(t, "en")

	// The site's home, then "Sign in with Telegram": pairingd's page.
	browser.get(d.site + "/")
	if !strings.Contains(browser.body, "Sign in with Telegram") {
		t.Fatalf("home page:\n%s", browser.body)
	}
	browser.get(d.site + "/login")
	m := chatDeepLink.FindStringSubmatch(browser.body)
	if m == nil || !strings.Contains(browser.body, `id="match-code"`) {
		t.Fatalf("no sign-in page with a link to the chat at %s:\n%s", browser.url, browser.body)
	}
	signInPage := browser.url
	code := regexp.MustCompile(`id="match-code">([A-Z0-9]+)<`).FindStringSubmatch(browser.body)[1]

	// The phone opens the link: the chat with a Start button, then the
	// bot's question naming the site and the match code.
	phone.get(html.UnescapeString(m[1]))
	phone.submit("/chat/send", "/start ", nil)
	if !strings.Contains(phone.body, "Example Shop") || !strings.Contains(phone.body, code) {
		t.Fatalf("the bot's question lacks the site or the code %s:\n%s", code, phone.body)
	}
	phone.submit("/chat/press", "dl:ok:", nil)

	// The sign-in page continues to the site: a new person, no account.
	browser.waitFor(signInPage, "New here?")
	if !strings.Contains(browser.url, d.site+"/account") || !strings.Contains(browser.body, "&#34;messengers&#34;") {
		t.Fatalf("account page at %s:\n%s", browser.url, browser.body)
	}
	browser.submit("/account/create", "Create account", nil)
	if !strings.Contains(browser.body, `id="user-id">shop-user-1<`) || !strings.Contains(browser.body, "telegram") {
		t.Fatalf("after Create account:\n%s", browser.body)
	}

	// Unlink in the chat; the site sees no messenger and offers Connect.
	phone.get(phoneChat(phone)).submit("/chat/send", "/logout", nil)
	phone.submit("/chat/press", "Yes, unlink", nil)
	browser.waitFor(d.site+"/account", "No messenger is linked")

	// Connect Telegram: the deep link and its QR code, confirmed in chat.
	browser.submit("/connect", "Connect Telegram", nil)
	link := browser.link("deeplink")
	if !strings.Contains(browser.body, `src="data:image/png;base64,`) || !strings.Contains(link, "?start=pdl_") {
		t.Fatalf("connect page:\n%s", browser.body)
	}
	phone.get(link).submit("/chat/send", "/start ", nil)
	phone.submit("/chat/press", "dl:ok:", nil)
	if !strings.Contains(phone.body, "now linked") {
		t.Fatalf("chat after connect:\n%s", phone.body)
	}
	browser.waitFor(d.site+"/account", "Send me a test notification")

	// A test notification reaches the chat.
	browser.submit("/notify", "Send me a test notification", nil)
	if !strings.Contains(browser.body, "Sent") {
		t.Fatalf("after notify:\n%s", browser.body)
	}
	phone.waitFor(phoneChat(phone), "This is a test notification for shop-user-1")

	// Sign out, at the site and at pairingd: the next sign-in asks again.
	browser.get(d.site+"/account").submit("/logout", "Sign out", nil)
	if !strings.Contains(browser.body, "You are signed out") {
		t.Fatalf("after sign-out at %s:\n%s", browser.url, browser.body)
	}
	browser.get(d.site + "/login")
	if !chatDeepLink.MatchString(browser.body) {
		t.Fatalf("after sign-out the sign-in did not ask again: %s\n%s", browser.url, browser.body)
	}
	d.stop()
}

// phoneChat is the web chat's page on the stand-in the phone talks to.
func phoneChat(w *web) string {
	u, _ := url.Parse(w.url)
	return u.Scheme + "://" + u.Host + "/chat"
}
