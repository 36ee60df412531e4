package main

import (
	"bytes"
	"context"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The demo's browser tests: `pairingd demo` (the real binary) is the
// harness, headless Chromium (chromedp) the person. One tab is the
// person's browser on the sample site, another, in a profile of its own,
// the phone with the web chat. Screenshots of every page go to
// PAIRING_SCREENSHOTS (a temporary directory when unset; never committed).

// demoView is a screen size and a language the tests run at.
type demoView struct {
	name          string
	width, height int64
	mobile        bool
	lang          string
	noScript      bool
}

var demoViews = []demoView{
	{name: "phone", width: 390, height: 844, mobile: true, lang: "en"},
	{name: "desktop", width: 1280, height: 800, lang: "en"},
	{name: "phone-ru", width: 390, height: 844, mobile: true, lang: "ru"},
}

// demoChrome is one headless Chromium with a fresh user-data-dir.
type demoChrome struct {
	t     *testing.T
	root  context.Context
	shots string
}

func newDemoChrome(t *testing.T) *demoChrome {
	t.Helper()
	bin := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-features", "Translate"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	shots := os.Getenv("PAIRING_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &demoChrome{t: t, root: root, shots: shots}
}

// demoTab is a tab in a browser context (cookies) of its own.
type demoTab struct {
	t   *testing.T
	c   *demoChrome
	ctx context.Context
	v   demoView
}

func (c *demoChrome) tab(v demoView) *demoTab {
	c.t.Helper()
	ctx, cancel := chromedp.NewContext(c.root, chromedp.WithNewBrowserContext())
	c.t.Cleanup(cancel)
	vopts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if v.mobile {
		vopts = append(vopts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(v.width, v.height, vopts...),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": v.lang}})
			return err
		}),
	}
	if v.noScript {
		steps = append(steps, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	err := chromedp.Do(ctx, steps...)
	if err != nil {
		c.t.Fatalf("tab setup: %v", err)
	}
	return &demoTab{t: c.t, c: c, ctx: ctx, v: v}
}

func (b *demoTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
	}
}

// open navigates and waits for sel.
func (b *demoTab) open(url, sel string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click clicks sel and waits for then, a selector only the next page has.
func (b *demoTab) click(sel, then string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(then)))
}

// press clicks sel, which sends a form and leaves the page, and waits
// until the next page (without sel) shows then.
func (b *demoTab) press(sel, then string) {
	b.t.Helper()
	b.do("press "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitNotPresent(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(then)))
}

func (b *demoTab) attr(sel, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	a, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil || !a.Exists {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return a.Value
}

func (b *demoTab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitText waits until sel's text contains want; the page changes by
// itself (its script), nobody reloads it.
func (b *demoTab) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
		if err == nil && strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			b.t.Fatalf("%s never showed %q at %s; it shows:\n%s", sel, want, loc, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// has tells whether the page has sel now (no waiting).
func (b *demoTab) has(sel string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`))
	if err != nil {
		b.t.Fatalf("query %s: %v", sel, err)
	}
	return ok
}

func (b *demoTab) location() string {
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	return loc
}

// shot captures the whole page as <name>-<view>.png and checks that the
// page is no wider than the screen (nothing to scroll sideways).
func (b *demoTab) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.c.shots, "demo-"+name+"-"+b.v.name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil || int64(img.Bounds().Dx()) != b.v.width {
		b.t.Fatalf("screenshot %s: %v, width %d (screen %d): the page is wider than the screen", name, err, img.Bounds().Dx(), b.v.width)
	}
}

// TestBrowserDemoSignIn: in the demo, sign in with Telegram through the
// web chat (deep link confirmed in the chat, the sign-in page going on by
// itself), create the account, unlink in the chat, connect Telegram again
// with the site's deep link (its QR code decoding to the same link), get a
// test notification in the chat (the web chat showing it by itself), sign
// out; at phone and desktop size and in Russian.
func TestBrowserDemoSignIn(t *testing.T) {
	chromiumPath(t)
	for _, v := range demoViews {
		t.Run(v.name, func(t *testing.T) {
			d := startDemo(t)
			c := newDemoChrome(t)
			site, phone := c.tab(v), c.tab(v)
			ru := v.lang == "ru"

			site.open(d.site+"/", "#signin")
			site.shot("site-home")
			site.click("#signin", "#match-code")
			if ru && !strings.Contains(site.text("body"), "Открыть Telegram") {
				t.Fatalf("sign-in page not in Russian:\n%s", site.text("body"))
			}
			site.shot("signin")
			match := strings.TrimSpace(site.text("#match-code"))
			link := site.attr(`a.button[data-channel="telegram"]`, "href")
			if !chatDeepLink.MatchString(`href="` + link + `"`) {
				t.Fatalf("the sign-in page's button %q does not open the web chat", link)
			}

			phone.open(link, "#start")
			phone.shot("chat-start")
			phone.press("#start", `button[data-callback^="dl:ok:"]`)
			if q := phone.text("#latest"); !strings.Contains(q, "Example Shop") || !strings.Contains(q, match) {
				t.Fatalf("the question %q lacks the site or the match code %s", q, match)
			}
			phone.shot("chat-confirm")
			phone.press(`button[data-callback^="dl:ok:"]`, "#text")
			phone.shot("chat-signed-in")

			// The sign-in page went on by itself to the site.
			site.do("sign-in page continues", chromedp.WaitVisible(chromedp.CSS("#create")))
			if !strings.HasPrefix(site.location(), d.site+"/account") || !strings.Contains(site.text("#claims"), `"messengers"`) {
				t.Fatalf("after the chat: %s\n%s", site.location(), site.text("body"))
			}
			site.shot("site-new")
			site.click("#create", "#user-id")
			if got := site.text("#user-id"); got != "shop-user-1" {
				t.Fatalf("account %q", got)
			}
			site.shot("site-account")

			// Unlink from the chat, then connect again from the site.
			phone.click(`button[data-command="/logout"]`, `button[data-callback="unlink:yes"]`)
			phone.press(`button[data-callback="unlink:yes"]`, "#text")
			site.open(d.site+"/account", "#connect")
			site.click("#connect", "#deeplink")
			connect := site.attr("#deeplink", "href")
			src := site.attr("#qr", "src")
			qr, ok := strings.CutPrefix(src, "data:image/png;base64,")
			if !ok || decodeQR(t, qr) != connect || !strings.Contains(connect, "?start=pdl_") {
				t.Fatalf("connect page: link %q, QR %.40q", connect, src)
			}
			site.shot("site-connect")
			phone.open(connect, "#start")
			phone.press("#start", `button[data-callback^="dl:ok:"]`)
			phone.press(`button[data-callback^="dl:ok:"]`, "#text")
			site.open(d.site+"/account", "#notify")
			if !strings.Contains(site.text("#leads"), "telegram") {
				t.Fatalf("account after connect:\n%s", site.text("body"))
			}

			// A test notification; the web chat shows it without a reload.
			site.click("#notify", "#flash")
			phone.waitText("#messages", "test notification for shop-user-1")
			phone.shot("chat-notification")
			site.shot("site-notified")

			site.click("#signout", "#signin")
			if !strings.Contains(site.text("#flash"), "signed out") {
				t.Fatalf("after sign-out: %s", site.text("body"))
			}
			site.shot("site-signed-out")
		})
	}
}

// TestBrowserDemoBotFirst: in the demo, the sign-ins that start in the
// chat. /login in the web chat; the PIN link opens pairingd's PIN page (a
// wrong PIN refused, then the right one) which signs the person in and
// sends them to the site's initiate_login_uri, where the sign-in completes
// without asking the chat again; the link notice appears in the chat and
// its unlink button unlinks (the site sees no messenger). Then /login
// again and Telegram's one-tap button (login_url, signed by the
// stand-in) signs the person in on the phone with no PIN, and the new
// link is noticed in the chat too.
func TestBrowserDemoBotFirst(t *testing.T) {
	chromiumPath(t)
	for _, v := range demoViews {
		t.Run(v.name, func(t *testing.T) {
			d := startDemo(t)
			c := newDemoChrome(t)
			site, phone := c.tab(v), c.tab(v)

			site.open(d.site+"/", "#bot")
			chat := site.attr("#bot", "href")
			phone.open(chat, "#text")
			phone.click(`button[data-command="/login"]`, `#latest code`)
			phone.shot("chat-pin")
			pin := strings.TrimSpace(phone.text("#latest code"))
			pairURL := phone.attr(`#latest a[href*="/pair?buid="]`, "href")
			if len(pin) != 6 {
				t.Fatalf("PIN %q", pin)
			}
			if !phone.has(`#latest a[data-login="1"]`) {
				t.Fatal("no one-tap button under /login")
			}

			// The PIN page: a wrong PIN, then the right one.
			site.open(pairURL, "#pin")
			if v.lang == "ru" && !strings.Contains(site.text("h1"), "PIN") {
				t.Fatalf("PIN page heading %q", site.text("h1"))
			}
			site.shot("pair")
			wrong := "000000"
			if pin == wrong {
				wrong = "111111"
			}
			site.do("wrong PIN", chromedp.SendKeys(chromedp.CSS("#pin"), wrong), chromedp.Submit(chromedp.CSS("#pin-form")),
				chromedp.WaitVisible(chromedp.CSS("#error")))
			site.shot("pair-wrong")
			if strings.Contains(site.location(), wrong) || strings.Contains(site.location(), pin) {
				t.Fatalf("a PIN reached the URL: %s", site.location())
			}
			site.do("right PIN", chromedp.SendKeys(chromedp.CSS("#pin"), pin), chromedp.Submit(chromedp.CSS("#pin-form")),
				chromedp.WaitVisible(chromedp.CSS("#create")))
			if !strings.HasPrefix(site.location(), d.site+"/account") {
				t.Fatalf("after the PIN page: %s", site.location())
			}
			site.click("#create", "#user-id")
			if got := site.text("#user-id"); got != "shop-user-1" {
				t.Fatalf("account %q", got)
			}

			// The link notice, and its unlink button.
			phone.do("link notice", chromedp.WaitVisible(chromedp.CSS(`button[data-callback^="pln_"]`)))
			phone.shot("chat-link-notice")
			if !strings.Contains(phone.text("#messages"), "Example Shop") {
				t.Fatalf("the notice does not name the site:\n%s", phone.text("#messages"))
			}
			phone.press(`button[data-callback^="pln_"]`, "#text")
			phone.shot("chat-unlinked")
			site.open(d.site+"/account", "#no-leads")

			// One tap: /login again (once the bot's few seconds between two
			// PINs passed), and the login_url button on the phone.
			deadline := time.Now().Add(30 * time.Second)
			for {
				phone.click(`button[data-command="/login"]`, `#latest`)
				if phone.has(`#latest a[data-login="1"]`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no new PIN:\n%s", phone.text("#messages"))
				}
				time.Sleep(time.Second)
			}
			// Any login button will do (the web chat signs at the press), and
			// #latest moves when the chat reloads with a newer message.
			oneTap := phone.attr(`a[data-login="1"]`, "href")
			// Leave the chat first: its script reloads the messages every
			// second, and a reload in flight aborts the navigation.
			phone.do("leave the chat", chromedp.Navigate("about:blank"))
			phone.open(absolute(chat, oneTap), "#create")
			if !strings.HasPrefix(phone.location(), d.site+"/account") || !strings.Contains(phone.text("#claims"), `"messengers"`) {
				t.Fatalf("after one tap: %s\n%s", phone.location(), phone.text("body"))
			}
			phone.shot("site-onetap")
			phone.click("#create", "#user-id")
			phone.open(chat, `button[data-callback^="pln_"]`)
		})
	}
}

// absolute resolves ref against base.
func absolute(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := b.Parse(ref)
	if err != nil {
		return ref
	}
	return r.String()
}

// TestBrowserDemoWithoutScript: the same sign-in with JavaScript off in
// both tabs. The web chat works by forms (each waits for the bot's
// answer), and the sign-in page is left with its Continue link.
func TestBrowserDemoWithoutScript(t *testing.T) {
	chromiumPath(t)
	v := demoView{name: "noscript", width: 1280, height: 800, lang: "en", noScript: true}
	d := startDemo(t)
	c := newDemoChrome(t)
	site, phone := c.tab(v), c.tab(v)

	site.open(d.site+"/", "#signin")
	site.click("#signin", "#match-code")
	link := site.attr(`a.button[data-channel="telegram"]`, "href")
	phone.open(link, "#start")
	phone.press("#start", `button[data-callback^="dl:ok:"]`)
	phone.press(`button[data-callback^="dl:ok:"]`, "#text")
	phone.shot("chat-signed-in")
	// Without script the page does not move: Continue does it.
	if strings.Contains(site.location(), d.site) {
		t.Fatalf("the sign-in page moved on without script: %s", site.location())
	}
	site.click("#continue", "#create")
	site.click("#create", "#user-id")
	// /status in the chat answers on the next page, no script needed.
	phone.do("type /status", chromedp.SendKeys(chromedp.CSS("#text"), "/status"), chromedp.Submit(chromedp.CSS("#text")),
		chromedp.WaitNotPresent(chromedp.CSS("#latest.mine")))
	phone.waitText("#latest", "linked")
	phone.shot("chat-status")
}
