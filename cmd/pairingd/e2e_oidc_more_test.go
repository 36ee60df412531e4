package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

const (
	fbPageID, fbPageToken, fbAppSecret = "1001", "page-token-xyz", "app-secret-abc"
	rpLoginStart                       = "https://shop.example/login/start"
)

var fbSignInLink = regexp.MustCompile(`https://m\.me/` + fbPageID + `\?ref=(psi_[A-Za-z0-9_-]+)`)

func messengerEnv(dir string, fb *fbfake.Server, extra ...string) []string {
	return baseEnv(dir, append([]string{
		"PAIRINGD_CHANNELS_0_NAME=fb-shop",
		"PAIRINGD_CHANNELS_0_TYPE=messenger",
		"PAIRINGD_CHANNELS_0_PAGE_ID=" + fbPageID,
		"PAIRINGD_CHANNELS_0_PAGE_ACCESS_TOKEN=" + fbPageToken,
		"PAIRINGD_CHANNELS_0_APP_ID=42",
		"PAIRINGD_CHANNELS_0_APP_SECRET=" + fbAppSecret,
		"PAIRINGD_CHANNELS_0_VERIFY_TOKEN=verify-me",
		"PAIRINGD_CHANNELS_0_GRAPH_URL=" + fb.URL(),
	}, extra...)...)
}

// deliverFB posts one signed Messenger webhook delivery.
func deliverFB(t *testing.T, in *instance, item map[string]any) {
	t.Helper()
	body := fbfake.Body(fbfake.Entry{PageID: fbPageID, Messaging: []map[string]any{item}})
	req, _ := http.NewRequest(http.MethodPost, in.base+"/webhooks/messenger", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", fbfake.Sign(fbAppSecret, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("messenger delivery: %d\n%s", res.StatusCode, in.logs())
	}
}

// idClaims are the claims the tests read from ID tokens and userinfo.
type idClaims struct {
	Nonce      string   `json:"nonce"`
	AMR        []string `json:"amr"`
	AuthTime   int64    `json:"auth_time"`
	Name       string   `json:"name"`
	GivenName  string   `json:"given_name"`
	Locale     string   `json:"locale"`
	SiteUserID *string  `json:"site_user_id"`
	Messengers []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"messengers"`
}

// TestBinaryOIDCMessenger is the sign-in through the Messenger fake: the
// m.me link with the sign-in token as ref opens a new thread (the Get
// Started postback carries the ref), the Confirm quick reply signs in.
// It also checks that state and nonce travel untouched and per request:
// two sign-ins in flight at once each get back their own.
func TestBinaryOIDCMessenger(t *testing.T) {
	fb := fbfake.New(t)
	fb.AddPage(fbPageID, fbPageToken, fbAppSecret)
	fb.SetProfile("7001", fbfake.Profile{FirstName: "Marie", LastName: "Curie", Locale: "fr_FR"})
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	// ID tokens signed with ES256 here (RS256, the default, elsewhere).
	env := messengerEnv(dir, fb, append(oidcEnv(listen, issuer), "PAIRINGD_OIDC_SIGNING_ALGORITHM=ES256")...)
	rp := createOIDCClient(t, dir, env)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)
	// stopped at the end, to read the whole log
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v\n%s", err, in.logs())
	}
	conf := oauth2.Config{ClientID: rp.ClientID, ClientSecret: rp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID, "profile"}}
	verifier := provider.Verifier(&oidc.Config{ClientID: rp.ClientID})

	// Two sign-ins in flight in two browsers; the second is confirmed
	// first, from another chat.
	type flow struct {
		b                   *browser
		state, nonce, pkce  string
		page, token, match  string
		psid                string
		wantName, wantGiven string
	}
	flows := []*flow{
		{state: "state-A-" + strings.Repeat("a", 20), nonce: "nonce-A", psid: "7001", wantName: "Marie Curie", wantGiven: "Marie"},
		{state: "state-B", nonce: "nonce-B", psid: "7002"},
	}
	for _, f := range flows {
		f.b, f.pkce = newBrowser(t), oauth2.GenerateVerifier()
		st, loc, body := f.b.get(conf.AuthCodeURL(f.state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.pkce)))
		if st != http.StatusFound || !strings.HasPrefix(loc, "/signin/") {
			t.Fatalf("authorize: %d %q %s", st, loc, body)
		}
		f.page = issuer + loc
		st, _, body = f.b.get(f.page)
		m, c := fbSignInLink.FindStringSubmatch(body), matchCodeRE.FindStringSubmatch(body)
		if st != http.StatusOK || m == nil || c == nil || !strings.Contains(body, "Open Messenger") {
			t.Fatalf("sign-in page: %d\n%s", st, body)
		}
		f.token, f.match = m[1], c[1]
	}
	for i, f := range []*flow{flows[1], flows[0]} {
		// A new thread opened through m.me/<page>?ref=<token>.
		started := fbfake.Postback(f.psid, "GET_STARTED")
		started["postback"].(map[string]any)["referral"] = map[string]any{"ref": f.token, "source": "SHORTLINK", "type": "OPEN_THREAD"}
		deliverFB(t, in, started)
		sent, err := fb.WaitSent(ctx, 2*i+1)
		if err != nil {
			t.Fatalf("no question in chat: %v\n%s", err, in.logs())
		}
		ask := sent[2*i]
		if len(ask.QuickReplies) != 2 || !strings.Contains(ask.Text, "Shop") || !strings.Contains(ask.Text, f.match) {
			t.Fatalf("question %+v (match code %s)", ask, f.match)
		}
		deliverFB(t, in, fbfake.QuickReplyEvent(f.psid, "m.confirm."+f.psid, ask.QuickReplies[0].Title, ask.QuickReplies[0].Payload))
		// The answer in the person's language (7001's profile is fr_FR).
		if sent, err = fb.WaitSent(ctx, 2*i+2); err != nil || !strings.Contains(sent[2*i+1].Text, "Shop") || len(sent[2*i+1].QuickReplies) != 0 {
			t.Fatalf("after confirm: %v %+v\n%s", err, sent, in.logs())
		}
	}

	var subs []string
	for _, f := range flows {
		if st, _, body := f.b.get(f.page + "/status"); st != http.StatusOK || !strings.Contains(body, `"confirmed"`) {
			t.Fatalf("status after confirm: %d %s", st, body)
		}
		st, loc, _ := f.b.get(f.page)
		if st != http.StatusSeeOther {
			t.Fatalf("continue: %d %q", st, loc)
		}
		code := codeFrom(t, loc, f.state, issuer) // state back unchanged, with iss
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(f.pkce))
		if err != nil {
			t.Fatalf("exchange: %v\n%s", err, in.logs())
		}
		rawID := tok.Extra("id_token").(string)
		idt, err := verifier.Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("id token: %v", err)
		}
		if hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(rawID, ".")[0]); !strings.Contains(string(hdr), `"alg":"ES256"`) {
			t.Fatalf("ID token header %s, want ES256", hdr)
		}
		var c idClaims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		// The relying party's nonce check: the ID token carries this
		// request's nonce, not the other's.
		if c.Nonce != f.nonce || strings.Join(c.AMR, " ") != "chat_confirm messenger" || c.AuthTime == 0 || c.SiteUserID != nil ||
			len(c.Messengers) != 1 || c.Messengers[0].Name != "fb-shop" || c.Messengers[0].Type != "messenger" {
			t.Fatalf("claims %+v (want nonce %q)", c, f.nonce)
		}
		if c.Name != f.wantName || c.GivenName != f.wantGiven || f.wantName != "" && c.Locale != "fr-FR" {
			t.Fatalf("profile claims %+v, want name %q", c, f.wantName)
		}
		ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != idt.Subject {
			t.Fatalf("userinfo: %v %+v", err, ui)
		}
		var uc idClaims
		if err := ui.Claims(&uc); err != nil || uc.Name != f.wantName || len(uc.Messengers) != 1 || uc.Messengers[0].Type != "messenger" {
			t.Fatalf("userinfo claims %+v %v", uc, err)
		}
		subs = append(subs, idt.Subject)
	}
	if len(subs) != 2 || subs[0] == subs[1] {
		t.Fatalf("two people, subjects %v", subs)
	}

	// Register, then link by sub, under authorize's rules: the second
	// person on the same Page cannot take the first one's user without
	// replace; bad input changes nothing.
	for _, c := range []struct {
		body map[string]any
		code int
		want string
	}{
		{map[string]any{"sub": subs[0]}, 400, "invalid_request"},
		{map[string]any{"sub": subs[0], "user_id": "fb-user-1", "extra": 1}, 400, "invalid_request"},
		{map[string]any{"sub": subs[0], "user_id": "fb-user-1"}, 200, "linked"},
		{map[string]any{"sub": subs[0], "user_id": "fb-user-1"}, 200, "already_linked"},
		{map[string]any{"sub": subs[1], "user_id": "fb-user-1"}, 409, "conflict"},
		{map[string]any{"sub": subs[1], "user_id": "fb-user-1", "replace": true}, 200, "linked"},
	} {
		st, out := in.call("POST", "/v1/links/oidc", key, c.body)
		got, _ := out["outcome"].(string)
		if st != 200 {
			got = errCode(out)
		}
		if st != c.code || got != c.want {
			t.Fatalf("link %v: %d %v, want %d %s", c.body, st, out, c.code, c.want)
		}
	}
	in.stop()
	for _, f := range flows {
		if strings.Contains(in.logs(), f.token) {
			t.Fatal("a sign-in token reached the log")
		}
	}
}

// TestBinaryOIDCExpired: a sign-in older than oidc.request_ttl (set short)
// gets a clear page with a way to start again (the client's
// initiate_login_uri), its polling says so, its chat token is refused in
// the chat, and no code is ever issued for it.
func TestBinaryOIDCExpired(t *testing.T) {
	tg := tgfake.New(t, "123456:AAE-secret-token-part")
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	const ttl = 2 * time.Second
	env := telegramEnv(dir, tg, append(oidcEnv(listen, issuer), "PAIRINGD_OIDC_REQUEST_TTL="+ttl.String())...)
	rp := createOIDCClient(t, dir, env, "--initiate-login-uri", rpLoginStart)
	in := start(t, dir, env)
	defer in.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: rp.ClientID, ClientSecret: rp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID}}
	b := newBrowser(t)
	began := time.Now()
	page, token, _ := signInPage(t, b, issuer, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	time.Sleep(time.Until(began.Add(ttl + 200*time.Millisecond)))

	restart := `href="` + rpLoginStart + `?iss=` + strings.ReplaceAll(strings.ReplaceAll(issuer, ":", "%3A"), "/", "%2F") + `"`
	st, _, body := b.get(page)
	if st != http.StatusGone || !strings.Contains(body, "This sign-in has expired") || !strings.Contains(body, restart) || !strings.Contains(body, "Start again") {
		t.Fatalf("expired page: %d (want 410 with %s)\n%s", st, restart, body)
	}
	if st, _, _ := b.get(page + "/status"); st != http.StatusGone {
		t.Fatalf("status of an expired sign-in: %d", st)
	}
	// The chat refuses the expired token and asks nothing.
	tg.UserSends(4242, "/start "+token, "en")
	sent, err := tg.WaitSent(ctx, 1)
	if err != nil {
		t.Fatalf("no answer in chat: %v\n%s", err, in.logs())
	}
	if !strings.Contains(sent[0].Plain(), "expired") || len(sent[0].Buttons()) != 0 {
		t.Fatalf("chat answer to an expired token: %q", sent[0].Plain())
	}
	// Still no code: the page stays expired.
	if st, loc, _ := b.get(page); st != http.StatusGone || loc != "" {
		t.Fatalf("expired page after the chat: %d %q", st, loc)
	}
	// A client without initiate_login_uri: the page says to go back to
	// the site instead of linking anywhere.
	other := createOIDCClient(t, dir, env)
	conf2 := conf
	conf2.ClientID, conf2.ClientSecret = other.ClientID, other.ClientSecret
	b2 := newBrowser(t)
	began = time.Now()
	page, _, _ = signInPage(t, b2, issuer, conf2.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	time.Sleep(time.Until(began.Add(ttl + 200*time.Millisecond)))
	if st, _, body := b2.get(page); st != http.StatusGone || !strings.Contains(body, "Go back to the website") || strings.Contains(body, `id="restart"`) {
		t.Fatalf("expired page without initiate_login_uri: %d\n%s", st, body)
	}
}
