package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// The relying party's redirect URI: never served, the test reads the
// Location header the browser would follow.
const rpCallback = "http://127.0.0.1:9/callback"

// oidcIssuer picks a free port so that server.public_url (the issuer) is
// the address the instance listens on.
func oidcIssuer(t *testing.T) (listen, issuer string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	listen = "127.0.0.1:" + strconv.Itoa(port)
	return listen, "http://" + listen
}

func oidcEnv(listen, issuer string) []string {
	return []string{"PAIRINGD_SERVER_LISTEN=" + listen, "PAIRINGD_SERVER_PUBLIC_URL=" + issuer, "PAIRINGD_OIDC_ENABLED=true"}
}

type registered struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func createOIDCClient(t *testing.T, dir string, env []string, args ...string) registered {
	t.Helper()
	var c registered
	out := cli(t, dir, env, append([]string{"clients", "create", "--name", "Shop", "--redirect-uri", rpCallback}, args...)...)
	if err := json.Unmarshal([]byte(lastLine(out)), &c); err != nil || c.ClientID == "" {
		t.Fatalf("clients create: %v\n%s", err, out)
	}
	return c
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get returns status, Location and body.
func (b *browser) get(u string) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

var (
	tgSignInLink = regexp.MustCompile(`https://t\.me/pairing_test_bot\?start=(psi_[A-Za-z0-9_-]+)`)
	matchCodeRE  = regexp.MustCompile(`id="match-code">([A-Z0-9]{4})<`)
)

// signInPage follows the authorization request to the hosted page and
// returns the page's URL, its chat token and its match code.
func signInPage(t *testing.T, b *browser, issuer, authURL string) (page, token, code string) {
	t.Helper()
	st, loc, body := b.get(authURL)
	if st != http.StatusFound || !strings.HasPrefix(loc, "/signin/") {
		t.Fatalf("authorize: %d %q %s", st, loc, body)
	}
	page = issuer + loc
	st, _, body = b.get(page)
	m, c := tgSignInLink.FindStringSubmatch(body), matchCodeRE.FindStringSubmatch(body)
	if st != 200 || m == nil || c == nil {
		t.Fatalf("sign-in page: %d\n%s", st, body)
	}
	return page, m[1], c[1]
}

// codeFrom checks the redirect to the site (state, iss) and returns the code.
func codeFrom(t *testing.T, loc, state, issuer string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, rpCallback+"?") {
		t.Fatalf("redirect %q", loc)
	}
	q := u.Query()
	if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %v (want state %q, iss %q)", q, state, issuer)
	}
	return q.Get("code")
}

// TestBinaryOIDCTelegram is the whole sign-in with a real relying party
// (go-oidc + oauth2) against the real binary, the chat confirmation done
// through the Telegram fake.
func TestBinaryOIDCTelegram(t *testing.T) {
	tg := tgfake.New(t, "123456:AAE-secret-token-part")
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	env := telegramEnv(dir, tg, oidcEnv(listen, issuer)...)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	rp := createOIDCClient(t, dir, env)
	pub := createOIDCClient(t, dir, env, "--public")
	if rp.ClientSecret == "" || pub.ClientSecret != "" {
		t.Fatalf("confidential %+v, public %+v", rp, pub)
	}
	in := start(t, dir, env)
	defer in.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)

	// Discovery and the relying party.
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v\n%s", err, in.logs())
	}
	var disc struct {
		Methods []string `json:"code_challenge_methods_supported"`
		Types   []string `json:"response_types_supported"`
		EndSess string   `json:"end_session_endpoint"`
		IssResp bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := provider.Claims(&disc); err != nil || strings.Join(disc.Methods, ",") != "S256" || disc.EndSess == "" || !disc.IssResp {
		t.Fatalf("discovery %+v %v", disc, err)
	}
	conf := oauth2.Config{ClientID: rp.ClientID, ClientSecret: rp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID, "profile"}}
	verifier := provider.Verifier(&oidc.Config{ClientID: rp.ClientID})

	// 1. A new person: code + PKCE through the deep link, confirmed in chat.
	b := newBrowser(t)
	pkce := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-1", oidc.Nonce("nonce-1"), oauth2.S256ChallengeOption(pkce))
	page, token, match := signInPage(t, b, issuer, authURL)
	if st, _, body := b.get(page + "/status"); st != 200 || !strings.Contains(body, `"pending"`) {
		t.Fatalf("status before confirm: %d %s", st, body)
	}
	tg.UserSends(4242, "/start "+token, "en")
	sent, err := tg.WaitSent(ctx, 1)
	if err != nil {
		t.Fatalf("no question in chat: %v\n%s", err, in.logs())
	}
	ask := sent[0]
	if !strings.Contains(ask.Plain(), "Shop") || !strings.Contains(ask.Plain(), match) || len(ask.Buttons()) != 2 {
		t.Fatalf("question %q (match code %s)", ask.Plain(), match)
	}
	tg.UserPresses(4242, ask.MessageID, *ask.Buttons()[0].CallbackData, "en")
	if sent, err = tg.WaitSent(ctx, 2); err != nil || !strings.Contains(sent[1].Plain(), "signed in to Shop") {
		t.Fatalf("after confirm: %v %+v\n%s", err, sent, in.logs())
	}
	if st, _, body := b.get(page + "/status"); st != 200 || !strings.Contains(body, `"confirmed"`) {
		t.Fatalf("status after confirm: %d %s", st, body)
	}
	// The page's status and result belong to the browser that opened it.
	if st, _, _ := newBrowser(t).get(page + "/status"); st != http.StatusForbidden {
		t.Fatalf("another browser read the status: %d", st)
	}
	st, loc, _ := b.get(page)
	if st != http.StatusSeeOther {
		t.Fatalf("continue: %d %q", st, loc)
	}
	code := codeFrom(t, loc, "state-1", issuer)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v\n%s", err, in.logs())
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	var claims struct {
		Nonce      string   `json:"nonce"`
		AMR        []string `json:"amr"`
		AuthTime   int64    `json:"auth_time"`
		Name       string   `json:"name"`
		SiteUserID *string  `json:"site_user_id"`
		Messengers []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"messengers"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Nonce != "nonce-1" || strings.Join(claims.AMR, " ") != "chat_confirm telegram" || claims.AuthTime == 0 ||
		claims.SiteUserID != nil || len(claims.Messengers) != 1 || claims.Messengers[0].Type != "telegram" {
		t.Fatalf("claims %+v", claims)
	}
	sub := idt.Subject
	if sub == "" || sub == "1" || strings.Contains(sub, "4242") {
		t.Fatalf("sub %q must be opaque", sub)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != sub {
		t.Fatalf("userinfo: %v %+v", err, ui)
	}
	var uiClaims map[string]any
	_ = ui.Claims(&uiClaims)
	if _, ok := uiClaims["messengers"]; !ok || uiClaims["site_user_id"] != nil {
		t.Fatalf("userinfo claims %v", uiClaims)
	}

	// 2. The code is single use; the replay revokes the first exchange's token.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("code replay: %v", err)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the access token still works after the code was replayed")
	}

	// 3. Register: the site creates its account and links it by sub.
	if st, out := in.call("POST", "/v1/links/oidc", key, map[string]any{"sub": sub, "user_id": "site-user-1"}); st != 200 || out["outcome"] != "linked" {
		t.Fatalf("link by sub: %d %v", st, out)
	}
	if st, out := in.call("POST", "/v1/links/oidc", key, map[string]any{"sub": "nobody", "user_id": "site-user-1"}); st != 404 {
		t.Fatalf("unknown sub: %d %v", st, out)
	}

	// 4. Match: the session signs the same browser in again at once, and
	// the ID token now names the site user.
	pkce = oauth2.GenerateVerifier()
	st, loc, _ = b.get(conf.AuthCodeURL("state-2", oidc.Nonce("nonce-2"), oauth2.S256ChallengeOption(pkce)))
	if st != http.StatusFound {
		t.Fatalf("authorize 2: %d", st)
	}
	st, loc, body := b.get(issuer + loc)
	if st != http.StatusSeeOther {
		t.Fatalf("session did not sign in at once: %d %s", st, body)
	}
	tok, err = conf.Exchange(ctx, codeFrom(t, loc, "state-2", issuer), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	idt, err = verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	claims.SiteUserID = nil
	_ = idt.Claims(&claims)
	if idt.Subject != sub || claims.SiteUserID == nil || *claims.SiteUserID != "site-user-1" || claims.Nonce != "nonce-2" {
		t.Fatalf("second sign-in: sub %q claims %+v", idt.Subject, claims)
	}
	oldIDToken := tok.Extra("id_token").(string)

	// max_age: a session older than it asks again; a younger one does not.
	authAt := time.Unix(claims.AuthTime, 0)
	time.Sleep(time.Until(authAt.Add(2100 * time.Millisecond)))
	for _, c := range []struct {
		maxAge string
		ask    bool
	}{{"1", true}, {"3600", false}} {
		st, loc, _ = b.get(conf.AuthCodeURL("state-age", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("max_age", c.maxAge)))
		if st != http.StatusFound {
			t.Fatalf("authorize max_age=%s: %d", c.maxAge, st)
		}
		st, _, body = b.get(issuer + loc)
		if asked := st == http.StatusOK && tgSignInLink.MatchString(body); asked != c.ask {
			t.Fatalf("max_age=%s: status %d, asked again %v, want %v", c.maxAge, st, asked, c.ask)
		}
	}
	// prompt=none without a session: login_required to the site, with iss.
	stranger := newBrowser(t)
	st, loc, _ = stranger.get(conf.AuthCodeURL("state-none", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none")))
	if st != http.StatusFound {
		t.Fatalf("authorize prompt=none: %d", st)
	}
	if st, loc, _ = stranger.get(issuer + loc); st != http.StatusFound && st != http.StatusSeeOther ||
		!strings.Contains(loc, "error=login_required") || !strings.Contains(loc, "state=state-none") || !strings.Contains(loc, "iss=") {
		t.Fatalf("prompt=none without a session: %d %q", st, loc)
	}

	// 5. prompt=login asks again; Cancel in chat and the page says so.
	st, loc, _ = b.get(conf.AuthCodeURL("state-3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login")))
	if st != http.StatusFound {
		t.Fatalf("authorize 3: %d", st)
	}
	page = issuer + loc
	st, _, body = b.get(page)
	m := tgSignInLink.FindStringSubmatch(body)
	if st != 200 || m == nil {
		t.Fatalf("prompt=login did not ask again: %d", st)
	}
	// The page's headers; its Cancel form refuses a post without the
	// CSRF token and changes nothing.
	res, err := b.c.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := res.Header.Get(k); got != want {
			t.Fatalf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	res, err = b.c.PostForm(page+"/cancel", url.Values{"csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel without the CSRF token: %d", res.StatusCode)
	}
	if st, _, body := b.get(page + "/status"); !strings.Contains(body, `"pending"`) {
		t.Fatalf("status after a forged cancel: %d %s", st, body)
	}
	tg.UserSends(4242, "/start "+m[1], "en")
	if sent, err = tg.WaitSent(ctx, 3); err != nil {
		t.Fatal(err)
	}
	tg.UserPresses(4242, sent[2].MessageID, *sent[2].Buttons()[1].CallbackData, "en")
	if sent, err = tg.WaitSent(ctx, 4); err != nil || !strings.Contains(sent[3].Plain(), "cancelled") {
		t.Fatalf("cancel answer: %v %+v", err, sent)
	}
	if st, _, body := b.get(page + "/status"); !strings.Contains(body, `"declined"`) {
		t.Fatalf("status after cancel: %d %s", st, body)
	}
	if st, _, body := b.get(page); st != 200 || !strings.Contains(body, "cancelled the sign-in") {
		t.Fatalf("page after cancel: %d %s", st, body)
	}

	// 6. Refusals: a redirect URI not registered exactly; a public client
	// without PKCE.
	bad := conf
	bad.RedirectURL = rpCallback + "/other"
	if st, loc, _ := newBrowser(t).get(bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); st == http.StatusFound && strings.HasPrefix(loc, rpCallback) {
		t.Fatalf("wrong redirect URI was followed: %d %q", st, loc)
	}
	pubConf := oauth2.Config{ClientID: pub.ClientID, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID}}
	st, loc, _ = newBrowser(t).get(pubConf.AuthCodeURL("s"))
	// An error response carries iss too (RFC 9207).
	if st != http.StatusFound || !strings.HasPrefix(loc, rpCallback) || !strings.Contains(loc, "error=invalid_request") || !strings.Contains(loc, "iss="+url.QueryEscape(issuer)) {
		t.Fatalf("public client without PKCE: %d %q", st, loc)
	}

	// 7. Key rotation: the JWKS keeps the old key, so a token it signed
	// still verifies.
	cli(t, dir, env, "signing-keys", "rotate")
	var jwks struct{ Keys []map[string]any }
	resp, err := http.Get(issuer + "/oidc/keys")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if len(jwks.Keys) != 2 {
		t.Fatalf("JWKS after rotation has %d keys", len(jwks.Keys))
	}
	fresh, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Verifier(&oidc.Config{ClientID: rp.ClientID}).Verify(ctx, oldIDToken); err != nil {
		t.Fatalf("token signed by the rotated key: %v", err)
	}

	// Nothing secret in the logs.
	logs := in.logs()
	for _, s := range []string{token, code, rp.ClientSecret, tok.AccessToken} {
		if strings.Contains(logs, s) {
			t.Fatalf("a secret reached the log: %q", s)
		}
	}
}
