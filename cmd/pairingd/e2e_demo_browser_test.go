package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The demo's browser tests: `pairingd demo` (the real binary) is the
// harness, headless Chromium (chromedp) the person. One tab is the
// person's browser on the sample site, another, in a profile of its own,
// the phone with the web chat. Screenshots of every page go to
// PAIRING_SCREENSHOTS (a temporary directory when unset; never committed).

// demoViews are the screens and languages the demo tests run at.
var demoViews = []view{phone, desktop, {name: "phone-ru", width: 390, height: 844, mobile: true, lang: "ru"}}

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
			c := newChromium(t, "demo-")
			site, phone := c.tab(t, v), c.tab(t, v)
			ru := v.lang == "ru"

			site.open(d.site+"/", "#signin")
			site.shot("site-home")
			site.click("#signin", "#match-code")
			if ru && !strings.Contains(site.text("body"), "Открыть Telegram") {
				t.Fatalf("sign-in page not in Russian:\n%s", site.text("body"))
			}
			site.shot("signin")
			match := site.text("#match-code")
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
			c := newChromium(t, "demo-")
			site, phone := c.tab(t, v), c.tab(t, v)

			site.open(d.site+"/", "#bot")
			chat := site.attr("#bot", "href")
			phone.open(chat, "#text")
			phone.click(`button[data-command="/login"]`, `#latest code`)
			phone.shot("chat-pin")
			pin := phone.text("#latest code")
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
			// PINs passed), and the login_url button on the phone. A new PIN
			// is a new one-tap button anywhere in the chat: the bot's answer
			// comes a moment after the press, and by the next press a "please
			// wait" answer may already be the latest message.
			const oneTapButton = `#messages a[data-login="1"]`
			before := phone.count(oneTapButton)
			deadline := time.Now().Add(45 * time.Second)
			for phone.count(oneTapButton) == before {
				if time.Now().After(deadline) {
					t.Fatalf("no new PIN:\n%s", phone.text("#messages"))
				}
				phone.click(`button[data-command="/login"]`, `#latest`)
				for answered := time.Now().Add(2 * time.Second); time.Now().Before(answered) && phone.count(oneTapButton) == before; {
					time.Sleep(200 * time.Millisecond)
				}
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
	v := view{name: "noscript", width: 1280, height: 800, lang: "en", noScript: true}
	d := startDemo(t)
	c := newChromium(t, "demo-")
	site, phone := c.tab(t, v), c.tab(t, v)

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
