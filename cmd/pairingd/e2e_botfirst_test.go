package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// The site's third-party login start (OpenID Connect Core 1.0, section 4):
// never served, the test reads the Location the browser would follow.
const pairLoginStart = "http://127.0.0.1:9/login/start"

var (
	pinInText  = regexp.MustCompile(`Your PIN: (\d{6})`)
	pairLinkRE = regexp.MustCompile(`(http://[^\s"]+/pair\?buid=[A-Za-z0-9]+)`)
	csrfRE     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	formBUIDRE = regexp.MustCompile(`name="buid" value="([^"]+)"`)
)

// post submits a form and returns status, Location and body.
func (b *browser) post(u string, form url.Values) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), sb.String()
}

// botFirstEnv is a Telegram channel whose /login leads to the hosted PIN
// page of client, with the one-tap button.
func botFirstEnv(dir string, tg *tgfake.Server, listen, issuer, client string) []string {
	return telegramEnv(dir, tg, append(oidcEnv(listen, issuer),
		"PAIRINGD_CHANNELS_0_PIN_PAGE_CLIENT="+client, "PAIRINGD_CHANNELS_0_ONE_TAP=true",
		"PAIRINGD_PAIRING_SITE_NAME=Shop", "PAIRINGD_PAIRING_RESEND_INTERVAL=2s",
		"PAIRINGD_CHANNELS_0_LINK_NOTICES=true")...)
}

// TestBinaryBotFirstSignIn walks the chat-first sign-in with the real
// binary and a real relying party (go-oidc + oauth2): /login in the chat,
// the hosted PIN page (a wrong PIN, then the right one), the redirect to
// the client's initiate_login_uri with iss and login_hint, and the site's
// authorization request completing from the session without any question
// in the chat. Then the refusals (a used PIN, the resend button) and
// Telegram's one tap (valid, tampered, stale). No PIN or BUID in the log.
func TestBinaryBotFirstSignIn(t *testing.T) {
	tg := tgfake.New(t, "123456:AAE-secret-token-part")
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	plain := telegramEnv(dir, tg, oidcEnv(listen, issuer)...)
	rp := createOIDCClient(t, dir, plain, "--initiate-login-uri", pairLoginStart)
	key := lastLine(cli(t, dir, plain, "keys", "create", "--name", "site"))
	env := botFirstEnv(dir, tg, listen, issuer, rp.ClientID)
	in := start(t, dir, env)
	defer in.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)

	// /login: the PIN, the hosted page's link, and the one-tap button.
	tg.UserSends(4242, "/login", "en")
	sent, err := tg.WaitSent(ctx, 1)
	if err != nil {
		t.Fatalf("no PIN message: %v\n%s", err, in.logs())
	}
	msg := sent[0].Plain()
	pinM, linkM := pinInText.FindStringSubmatch(msg), pairLinkRE.FindStringSubmatch(msg)
	if pinM == nil || linkM == nil || !strings.HasPrefix(linkM[1], issuer+"/pair?buid=") {
		t.Fatalf("PIN message %q", msg)
	}
	pin, link := pinM[1], linkM[1]
	buid := strings.TrimPrefix(link, issuer+"/pair?buid=")
	var oneTap string
	for _, bt := range sent[0].Buttons() {
		if bt.LoginURL != nil {
			oneTap = bt.LoginURL.URL
		}
	}
	if oneTap != issuer+"/pair/telegram/telegram" {
		t.Fatalf("one-tap button %q in %+v", oneTap, sent[0].Buttons())
	}

	// The page: a PIN form with the page rules.
	b := newBrowser(t)
	resp, err := b.c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" ||
		!strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(csp, "form-action 'self' http://127.0.0.1:9") {
		t.Fatalf("page headers: %d %v", resp.StatusCode, h)
	}
	st, _, body := b.get(link)
	csrf := csrfRE.FindStringSubmatch(body)
	if st != 200 || csrf == nil || !strings.Contains(body, `name="pin"`) || !strings.Contains(body, "sign in to Shop") {
		t.Fatalf("PIN page: %d\n%s", st, body)
	}
	form := func(pin string) url.Values {
		return url.Values{"csrf": {csrf[1]}, "buid": {buid}, "pin": {pin}}
	}

	// Without the CSRF token (another site's form): refused, nothing counted.
	if st, _, _ := newBrowser(t).post(issuer+"/pair", url.Values{"buid": {buid}, "pin": {pin}}); st != http.StatusForbidden {
		t.Fatalf("post without CSRF: %d", st)
	}
	wrong := "000000"
	if wrong == pin {
		wrong = "111111"
	}
	if st, _, body := b.post(issuer+"/pair", form(wrong)); st != http.StatusUnprocessableEntity || !strings.Contains(body, "4 attempts left") {
		t.Fatalf("wrong PIN: %d\n%s", st, body)
	}
	if st, _, body := b.post(issuer+"/pair", form("12")); st != http.StatusBadRequest || !strings.Contains(body, "6 digits") {
		t.Fatalf("malformed PIN: %d\n%s", st, body)
	}

	// The right PIN: a session, and the site's login start.
	st, loc, body := b.post(issuer+"/pair", form(pin))
	if st != http.StatusSeeOther {
		t.Fatalf("right PIN: %d %q\n%s\n%s", st, loc, body, in.logs())
	}
	start, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, pairLoginStart+"?") || start.Query().Get("iss") != issuer || start.Query().Get("login_hint") == "" {
		t.Fatalf("initiate_login_uri redirect %q", loc)
	}
	hint := start.Query().Get("login_hint")
	if strings.Contains(loc, buid) || strings.Contains(loc, pin) {
		t.Fatalf("the redirect carries a secret: %q", loc)
	}

	// The site starts a normal authorization request; it completes from
	// the session, with no question in the chat.
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: rp.ClientID, ClientSecret: rp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID, "profile"}}
	pkce := oauth2.GenerateVerifier()
	st, loc, _ = b.get(conf.AuthCodeURL("state-bf", oidc.Nonce("nonce-bf"), oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("login_hint", hint)))
	if st != http.StatusFound || !strings.HasPrefix(loc, "/signin/") {
		t.Fatalf("authorize: %d %q", st, loc)
	}
	st, loc, body = b.get(issuer + loc)
	if st != http.StatusSeeOther {
		t.Fatalf("the session did not complete the request: %d\n%s", st, body)
	}
	tok, err := conf.Exchange(ctx, codeFrom(t, loc, "state-bf", issuer), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v\n%s", err, in.logs())
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: rp.ClientID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR   []string `json:"amr"`
		Nonce string   `json:"nonce"`
	}
	_ = idt.Claims(&claims)
	if idt.Subject != hint || strings.Join(claims.AMR, " ") != "otp telegram" || claims.Nonce != "nonce-bf" {
		t.Fatalf("id token: sub %q (hint %q) claims %+v", idt.Subject, hint, claims)
	}
	if n := len(tg.Sent()); n != 1 {
		t.Fatalf("the chat got %d messages; the session should have answered without asking", n)
	}

	// A login_hint naming someone else does not ride on this session.
	st, loc, _ = b.get(conf.AuthCodeURL("state-x", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("login_hint", "someone-else")))
	if st != http.StatusFound {
		t.Fatalf("authorize with another hint: %d", st)
	}
	if st, _, _ = b.get(issuer + loc); st != http.StatusOK {
		t.Fatalf("another person's hint was answered from this session: %d", st)
	}

	// The PIN is spent: a clear page with the resend button; the button
	// makes the chat send a new PIN, and the page goes on with the new BUID.
	st, _, body = b.post(issuer+"/pair", form(pin))
	if st != http.StatusGone || !strings.Contains(body, "already used") || !strings.Contains(body, `id="resend"`) {
		t.Fatalf("used PIN: %d\n%s", st, body)
	}
	// Within pairing.resend_interval of the last PIN: the page stays and says how long to wait.
	st, _, body = b.post(issuer+"/pair/resend", url.Values{"csrf": {csrf[1]}, "buid": {buid}})
	if st != http.StatusTooManyRequests || !strings.Contains(body, "Please wait") || !strings.Contains(body, buid) {
		t.Fatalf("early resend: %d\n%s", st, body)
	}
	time.Sleep(2 * time.Second)
	st, _, body = b.post(issuer+"/pair/resend", url.Values{"csrf": {csrf[1]}, "buid": {buid}})
	newBUID := formBUIDRE.FindStringSubmatch(body)
	if st != 200 || newBUID == nil || newBUID[1] == buid || !strings.Contains(body, "new PIN is on its way") {
		t.Fatalf("resend: %d\n%s", st, body)
	}
	sent, err = tg.WaitSent(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	pin2 := pinInText.FindStringSubmatch(sent[1].Plain())
	if pin2 == nil || !strings.Contains(sent[1].Plain(), newBUID[1]) {
		t.Fatalf("resent message %q", sent[1].Plain())
	}
	if st, _, _ := b.post(issuer+"/pair/resend", url.Values{"csrf": {csrf[1]}, "buid": {newBUID[1]}}); st != http.StatusTooManyRequests {
		t.Fatalf("second resend within the interval: %d", st)
	}
	if st, loc, _ := b.post(issuer+"/pair", url.Values{"csrf": {csrf[1]}, "buid": {newBUID[1]}, "pin": {pin2[1]}}); st != http.StatusSeeOther || !strings.HasPrefix(loc, pairLoginStart) {
		t.Fatalf("the new PIN on the same page: %d %q", st, loc)
	}
	if st, _, _ := b.get(link); st != http.StatusNotFound {
		t.Fatalf("the rotated BUID's page: %d", st)
	}

	// Telegram's one tap: signed data signs in without a PIN; tampered or
	// stale data is refused.
	tap := newBrowser(t)
	q := tg.LoginData(4242, "Ann", "ann", time.Now())
	st, loc, body = tap.get(oneTap + "?" + q.Encode())
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, pairLoginStart+"?") || !strings.Contains(loc, url.QueryEscape(hint)) {
		t.Fatalf("one tap: %d %q\n%s", st, loc, body)
	}
	// The same signed data opens one session only.
	if st, _, body := newBrowser(t).get(oneTap + "?" + q.Encode()); st != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Fatalf("one tap replayed: %d\n%s", st, body)
	}
	tampered := tg.LoginData(4242, "Ann", "ann", time.Now())
	tampered.Set("id", "4243")
	if st, _, _ := newBrowser(t).get(oneTap + "?" + tampered.Encode()); st != http.StatusUnauthorized {
		t.Fatalf("tampered one tap: %d", st)
	}
	stale := tg.LoginData(4242, "Ann", "ann", time.Now().Add(-10*time.Minute))
	if st, _, body := newBrowser(t).get(oneTap + "?" + stale.Encode()); st != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Fatalf("stale one tap: %d\n%s", st, body)
	}
	// A Telegram user who never wrote to the bot has no chat to sign in.
	if st, _, _ := newBrowser(t).get(oneTap + "?" + tg.LoginData(777, "Eve", "", time.Now()).Encode()); st != http.StatusNotFound {
		t.Fatalf("one tap of a stranger: %d", st)
	}

	// The site creates its account and links it by sub: the chat is told,
	// naming the site, with the unlink button; pressing it unlinks at
	// once and the site hears link.deleted.
	if st, out := in.call("POST", "/v1/links/oidc", key, map[string]any{"sub": hint, "user_id": "site-user-9"}); st != 200 || out["outcome"] != "linked" {
		t.Fatalf("link by sub: %d %v", st, out)
	}
	sent, err = tg.WaitSent(ctx, 3)
	if err != nil {
		t.Fatalf("no link notice: %v\n%s", err, in.logs())
	}
	notice := sent[2]
	if !strings.Contains(notice.Plain(), "linked to your account on Shop") || len(notice.Buttons()) != 1 || notice.Buttons()[0].CallbackData == nil {
		t.Fatalf("link notice %q %+v", notice.Plain(), notice.Buttons())
	}
	unlink := *notice.Buttons()[0].CallbackData
	// Pressed from another chat, the button is nobody's.
	tg.UserSends(5151, "/start", "en")
	if _, err := tg.WaitSent(ctx, 4); err != nil {
		t.Fatal(err)
	}
	tg.UserPresses(5151, notice.MessageID, unlink, "en")
	time.Sleep(300 * time.Millisecond)
	if st, _ := in.call("GET", "/v1/links/site-user-9", key, nil); st != 200 {
		t.Fatalf("another chat's press unlinked: %d", st)
	}
	tg.UserPresses(4242, notice.MessageID, unlink, "en")
	sent, err = tg.WaitSent(ctx, 5)
	if err != nil || !strings.Contains(sent[4].Plain(), "Unlinked") {
		t.Fatalf("after the press: %v %+v\n%s", err, sent, in.logs())
	}
	if st, _ := in.call("GET", "/v1/links/site-user-9", key, nil); st != http.StatusNotFound {
		t.Fatalf("still linked after the unlink button: %d", st)
	}
	// Events are listed once they are old enough not to be overtaken.
	for {
		_, events := in.call("GET", "/v1/events", key, nil)
		if strings.Contains(fmtJSON(events), `"by":"link_notice"`) && strings.Contains(fmtJSON(events), `"type":"link.deleted"`) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no link.deleted by link_notice: %v", events)
		}
		time.Sleep(100 * time.Millisecond)
	}

	logs := in.logs()
	for _, s := range []string{pin, pin2[1], buid, newBUID[1], q.Get("hash"), unlink} {
		if strings.Contains(logs, s) {
			t.Fatalf("a secret reached the log: %q\n%s", s, logs)
		}
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBinaryPINPageRefusals: the page's answers to a lock, an unknown
// link and a flood from one address, in the person's language, without
// script, and with no PIN in the log.
func TestBinaryPINPageRefusals(t *testing.T) {
	tg := tgfake.New(t, "123456:AAE-secret-token-part")
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	plain := telegramEnv(dir, tg, oidcEnv(listen, issuer)...)
	rp := createOIDCClient(t, dir, plain, "--initiate-login-uri", pairLoginStart)
	// A burst of 12 (twice the rate): the page's ten requests below pass,
	// the flood after them is refused.
	env := append(botFirstEnv(dir, tg, listen, issuer, rp.ClientID),
		"PAIRINGD_SERVER_PUBLIC_RATE_PER_SECOND=6")
	in := start(t, dir, env)
	defer in.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)

	tg.UserSends(4242, "/login", "ru")
	sent, err := tg.WaitSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	pinM, linkM := regexp.MustCompile(`(\d{6})`).FindStringSubmatch(sent[0].Plain()), pairLinkRE.FindStringSubmatch(sent[0].Plain())
	if pinM == nil || linkM == nil {
		t.Fatalf("PIN message %q", sent[0].Plain())
	}
	pin, link := pinM[1], linkM[1]
	buid := strings.TrimPrefix(link, issuer+"/pair?buid=")

	b := newBrowser(t)
	req, _ := http.NewRequest("GET", link, nil)
	req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.5")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	_, _ = io.Copy(&sb, resp.Body)
	resp.Body.Close()
	body := sb.String()
	csrf := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || csrf == nil || !strings.Contains(body, "Вход по PIN") || resp.Header.Get("Content-Language") != "ru" ||
		strings.Contains(body, "<script") {
		t.Fatalf("Russian page: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}

	// Five wrong PINs lock the row: the fifth and every later one, the
	// right PIN included, get the lock page without a form or resend.
	wrong := "000000"
	if wrong == pin {
		wrong = "111111"
	}
	form := url.Values{"csrf": {csrf[1]}, "buid": {buid}, "pin": {wrong}}
	for i := 1; i <= 4; i++ {
		if st, _, _ := b.post(issuer+"/pair", form); st != http.StatusUnprocessableEntity {
			t.Fatalf("wrong PIN %d: %d", i, st)
		}
	}
	for i, p := range []string{wrong, pin} {
		form.Set("pin", p)
		st, _, body := b.post(issuer+"/pair", form)
		if st != http.StatusLocked || !strings.Contains(body, "15 minutes") || strings.Contains(body, `name="pin"`) || strings.Contains(body, `id="resend"`) {
			t.Fatalf("locked %d: %d\n%s", i, st, body)
		}
	}

	// An unknown or malformed link.
	for _, u := range []string{issuer + "/pair?buid=AAAAAAAAAAAAAAAAAAAAAAAAAA", issuer + "/pair", issuer + "/pair?buid=" + strings.Repeat("x", 200)} {
		if st, _, body := b.get(u); st != http.StatusNotFound || !strings.Contains(body, "/login") {
			t.Fatalf("%s: %d\n%s", u, st, body)
		}
	}

	// One address: the burst, then 429. The bucket refills 6 a second
	// while the test runs, so the flood is sized to be refused even on a
	// slow machine (100 requests would have to take over 14 s to pass).
	var limited bool
	for range 100 {
		if st, _, _ := b.post(issuer+"/pair", form); st == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("no per-address limit on the page")
	}

	logs := in.logs()
	for _, s := range []string{pin, buid, csrf[1]} {
		if strings.Contains(logs, s) {
			t.Fatalf("a secret reached the log: %q\n%s", s, logs)
		}
	}
}
