package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pairingd/pairingd/api/webpage/webpagetest"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// The browser tests drive the real hosted pages in headless Chromium
// (chromedp): a relying party made of go-oidc and oauth2 serves its
// callback, a person's browser opens its authorization URL, the chat
// confirmation comes through the Telegram fake, and the test watches the
// page go on by itself (or, with JavaScript off, the person press
// Continue). Every page is captured at phone and desktop width in English
// and Russian into PAIRING_SCREENSHOTS (a temporary directory when unset;
// never committed).

// relyingParty is a site using go-oidc and oauth2: it starts sign-ins
// and serves the callback, where it checks state and iss, exchanges the
// code with its PKCE verifier, verifies the ID token and its nonce, and
// greets the person.
type relyingParty struct {
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string][2]string // state -> PKCE verifier, nonce
}

// newRelyingParty registers the site (before the instance starts);
// discover completes it once the instance runs.
func newRelyingParty(t *testing.T, dir string, env []string, issuer string, extra ...string) *relyingParty {
	t.Helper()
	rp := &relyingParty{t: t, issuer: issuer, pending: map[string][2]string{}}
	rp.srv = httptest.NewServer(http.HandlerFunc(rp.callback))
	t.Cleanup(rp.srv.Close)
	c := createOIDCClient(t, dir, env, append([]string{"--redirect-uri", rp.srv.URL + "/callback"}, extra...)...)
	rp.conf = oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		RedirectURL: rp.srv.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile"}}
	return rp
}

// discover reads the provider's discovery document and keys.
func (rp *relyingParty) discover() {
	rp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, rp.issuer)
	if err != nil {
		rp.t.Fatal(err)
	}
	rp.conf.Endpoint = provider.Endpoint()
	rp.verifier = provider.Verifier(&oidc.Config{ClientID: rp.conf.ClientID})
}

// start is the site's "Sign in with your messenger" button: the
// authorization URL with a fresh state, nonce and PKCE verifier.
func (rp *relyingParty) start() string {
	state, nonce, pkce := oauth2.GenerateVerifier()[:16], oauth2.GenerateVerifier()[:16], oauth2.GenerateVerifier()
	rp.mu.Lock()
	rp.pending[state] = [2]string{pkce, nonce}
	rp.mu.Unlock()
	return rp.conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce))
}

func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fail := func(why string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<!doctype html><p id="rp-error">%s</p>`, html.EscapeString(why))
	}
	switch {
	case !ok:
		fail("unknown state")
		return
	case q.Get("iss") != rp.issuer:
		fail("wrong iss")
		return
	case q.Get("error") != "":
		fail("error: " + q.Get("error"))
		return
	}
	tok, err := rp.conf.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p[0]))
	if err != nil {
		fail("exchange: " + err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(r.Context(), raw)
	if err != nil || idt.Nonce != p[1] {
		fail(fmt.Sprintf("id token: %v (nonce ok: %v)", err, err == nil && idt.Nonce == p[1]))
		return
	}
	fmt.Fprintf(w, `<!doctype html><h1 id="welcome">Welcome</h1><p id="sub">%s</p>`, html.EscapeString(idt.Subject))
}

// chatAnswers has Telegram chat answer the question a sign-in token asks:
// press 0 is Confirm, 1 Cancel.
func chatAnswers(ctx context.Context, t *testing.T, tg *tgfake.Server, chat int64, token, match string, press int) {
	t.Helper()
	n := len(tg.Sent())
	tg.UserSends(chat, "/start "+token, "en")
	sent, err := tg.WaitSent(ctx, n+1)
	if err != nil {
		t.Fatalf("no question in chat: %v", err)
	}
	ask := sent[n]
	if !strings.Contains(ask.Plain(), match) || len(ask.Buttons()) != 2 {
		t.Fatalf("question %q, want match code %s", ask.Plain(), match)
	}
	tg.UserPresses(chat, ask.MessageID, *ask.Buttons()[press].CallbackData, "en")
	if _, err := tg.WaitSent(ctx, n+2); err != nil {
		t.Fatalf("no answer to the press: %v", err)
	}
}

// signInOpened reads the sign-in page the tab shows: the deep link of the
// button, the QR code decoded (it must be the same link), the match code.
func signInOpened(b *tab) (token, match string) {
	b.t.Helper()
	if loc := b.location(); !strings.Contains(loc, "/signin/") {
		b.t.Fatalf("not on the sign-in page: %s", loc)
	}
	href := b.attr(`a.button[data-channel="telegram"]`, "href")
	m := tgSignInLink.FindStringSubmatch(href)
	if m == nil {
		b.t.Fatalf("button link %q", href)
	}
	src := b.attr(`figure.qr img[data-channel="telegram"]`, "src")
	data, ok := strings.CutPrefix(src, "data:image/png;base64,")
	if !ok {
		b.t.Fatalf("QR image src %.40q", src)
	}
	if got := decodeQR(b.t, data); got != href {
		b.t.Fatalf("QR code says %q, the button %q", got, href)
	}
	// And as the browser draws it, scaled up on the screen.
	shot, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(`figure.qr img[data-channel="telegram"]`)))
	if err != nil {
		b.t.Fatalf("screenshot of the QR code: %v", err)
	}
	if got := decodeQR(b.t, base64.StdEncoding.EncodeToString(shot)); got != href {
		b.t.Fatalf("the QR code on screen says %q, the button %q", got, href)
	}
	match = b.text("#match-code")
	if len(match) != 4 {
		b.t.Fatalf("match code %q", match)
	}
	return m[1], match
}

// browserSetup starts an instance with a Telegram bot and a registered
// relying party (rpArgs: more clients create flags) for the browser tests.
func browserSetup(ctx context.Context, t *testing.T, rpArgs []string, extraEnv ...string) (*tgfake.Server, *relyingParty, *instance) {
	t.Helper()
	tg := tgfake.New(t, "123456:AAE-secret-token-part")
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	env := telegramEnv(dir, tg, append(oidcEnv(listen, issuer), append([]string{"PAIRINGD_OIDC_POLL_INTERVAL=500ms"}, extraEnv...)...)...)
	rp := newRelyingParty(t, dir, env, issuer, rpArgs...)
	in := start(t, dir, env)
	waitBotStarted(ctx, t, in, tg)
	rp.discover()
	return tg, rp, in
}

// TestBrowserSignIn drives the deep-link path at phone and desktop width,
// JavaScript off, Russian, Cancel in the chat and on the page.
func TestBrowserSignIn(t *testing.T) {
	c := newChromium(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tg, rp, in := browserSetup(ctx, t, nil)
	defer in.stop()
	chat := int64(7000)

	// The deep-link path: the page goes on by itself after Confirm.
	for _, vp := range []view{phone, desktop} {
		t.Run("deeplink-"+vp.name, func(t *testing.T) {
			b := c.tab(t, vp)
			b.do("open the authorization URL", chromedp.Navigate(rp.start()))
			if got := b.text(`a.button[data-channel="telegram"]`); got != "Open Telegram" {
				t.Fatalf("button %q", got)
			}
			if got := b.text("#hint-js"); !strings.Contains(got, "continues by itself") {
				t.Fatalf("hint with JavaScript %q", got)
			}
			token, match := signInOpened(b)
			b.shot("signin-en")
			chat++
			chatAnswers(ctx, t, tg, chat, token, match, 0)
			b.do("the page continues by itself to the site", chromedp.WaitVisible(chromedp.ID("welcome")))
			if loc := b.location(); !strings.HasPrefix(loc, rp.srv.URL+"/callback?") {
				t.Fatalf("ended at %s", loc)
			}
			if sub := b.text("#sub"); sub == "" {
				t.Fatal("no subject on the site's page")
			}
		})
	}

	// JavaScript off: nothing moves by itself; Continue does it.
	t.Run("nojs", func(t *testing.T) {
		nojs := desktop.in("fr")
		nojs.noScript = true
		b := c.tab(t, nojs)
		b.do("open the authorization URL", chromedp.Navigate(rp.start()))
		token, match := signInOpened(b)
		if got := b.text(`a.button[data-channel="telegram"]`); got != "Ouvrir Telegram" {
			t.Fatalf("French button %q", got)
		}
		// The hint asks for Continue; the one about going on by itself
		// stays hidden without script.
		if got := b.text("#hint-nojs"); got != "Après avoir confirmé dans le chat, appuyez sur Continuer." {
			t.Fatalf("hint without JavaScript %q", got)
		}
		b.do("the script's hint stays hidden", chromedp.WaitNotVisible(chromedp.ID("hint-js")))
		b.shot("signin-nojs-fr")
		chat++
		chatAnswers(ctx, t, tg, chat, token, match, 0)
		time.Sleep(1500 * time.Millisecond) // three poll intervals: a script would have moved on
		if loc := b.location(); !strings.Contains(loc, "/signin/") {
			t.Fatalf("the page moved without JavaScript: %s", loc)
		}
		b.do("press Continue", chromedp.Click(chromedp.ID("continue")), chromedp.WaitVisible(chromedp.ID("welcome")))
	})

	// Russian at both widths; Cancel in the chat, the page says so by
	// itself and offers the way back to the site.
	for _, lang := range []string{"en", "ru"} {
		for _, vp := range []view{phone, desktop} {
			t.Run("declined-"+lang+"-"+vp.name, func(t *testing.T) {
				b := c.tab(t, vp.in(lang))
				b.do("open the authorization URL", chromedp.Navigate(rp.start()))
				token, match := signInOpened(b)
				if lang == "ru" {
					if got := b.text(`a.button[data-channel="telegram"]`); got != "Открыть Telegram" {
						t.Fatalf("Russian button %q", got)
					}
					b.shot("signin-ru")
				}
				chat++
				chatAnswers(ctx, t, tg, chat, token, match, 1)
				b.do("the page shows the cancel by itself", chromedp.WaitVisible(chromedp.ID("message")))
				want := map[string]string{"en": "You cancelled the sign-in in the chat.", "ru": "Вы отменили вход в чате."}[lang]
				if got := b.text("#message"); got != want {
					t.Fatalf("declined page says %q, want %q", got, want)
				}
				wantBack := map[string]string{"en": "Back to Shop", "ru": "Вернуться на Shop"}[lang]
				if got := b.text("#back"); got != wantBack {
					t.Fatalf("back button %q, want %q", got, wantBack)
				}
				b.shot("declined-" + lang)
				// Back to the site, which hears access_denied.
				b.do("press Back", chromedp.Click(chromedp.ID("back")), chromedp.WaitVisible(chromedp.ID("rp-error")))
				if got := b.text("#rp-error"); got != "error: access_denied" {
					t.Fatalf("the site got %q", got)
				}
			})
		}
	}

	// The page's own Cancel: the site hears access_denied with its state.
	t.Run("cancel-on-page", func(t *testing.T) {
		b := c.tab(t, phone)
		b.do("open the authorization URL", chromedp.Navigate(rp.start()))
		signInOpened(b)
		b.do("press Cancel", chromedp.Click(chromedp.CSS("form.cancel button")), chromedp.WaitVisible(chromedp.ID("rp-error")))
		if got := b.text("#rp-error"); got != "error: access_denied" {
			t.Fatalf("the site got %q", got)
		}
	})
}

// TestBrowserSignInExpired: the page notices by itself that its sign-in
// expired and shows the expired page with a link to start again.
func TestBrowserSignInExpired(t *testing.T) {
	c := newChromium(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, rp, in := browserSetup(ctx, t, []string{"--initiate-login-uri", rpLoginStart}, "PAIRINGD_OIDC_REQUEST_TTL=2s")
	defer in.stop()
	for _, lang := range []string{"en", "ru"} {
		for _, vp := range []view{phone, desktop} {
			t.Run(lang+"-"+vp.name, func(t *testing.T) {
				b := c.tab(t, vp.in(lang))
				b.do("open the authorization URL", chromedp.Navigate(rp.start()))
				signInOpened(b)
				b.do("the page turns to the expired page by itself", chromedp.WaitVisible(chromedp.ID("restart")))
				want := map[string]string{"en": "This sign-in has expired or was already used.", "ru": "Срок этого входа истёк, или он уже использован."}[lang]
				if got := b.text("#message"); got != want {
					t.Fatalf("expired page says %q, want %q", got, want)
				}
				if href := b.attr("#restart", "href"); !strings.HasPrefix(href, rpLoginStart+"?iss=") {
					t.Fatalf("start again leads to %q", href)
				}
				b.shot("expired-" + lang)
			})
		}
	}
}

func decodeQR(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	text, err := webpagetest.ReadQR(raw)
	if err != nil {
		t.Fatal(err)
	}
	return text
}
