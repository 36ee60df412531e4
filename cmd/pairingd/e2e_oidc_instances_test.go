package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// balancer stands for the load balancer in front of two instances: every
// request to the shared public URL (the issuer, https) goes, as plain
// HTTP, to the instance the test chose, so the browser's cookie jar and the
// relying party see one https origin as they would in production.
type balancer struct {
	bases [2]*url.URL
	to    atomic.Int32
	// seen counts the requests each instance got.
	seen [2]atomic.Int64
}

func newBalancer(t *testing.T, a, b string) *balancer {
	t.Helper()
	lb := &balancer{}
	for i, s := range []string{a, b} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		lb.bases[i] = u
	}
	return lb
}

func (lb *balancer) use(i int) { lb.to.Store(int32(i)) }

func (lb *balancer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != strings.TrimPrefix(multiPublicURL, "https://") {
		return http.DefaultTransport.RoundTrip(r)
	}
	i := lb.to.Load()
	lb.seen[i].Add(1)
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = lb.bases[i].Scheme, lb.bases[i].Host
	out.Host = r.URL.Host
	return http.DefaultTransport.RoundTrip(out)
}

// TestBinaryOIDCTwoInstances splits one sign-in across two instances on
// one PostgreSQL: the authorization request and the page on A, the chat
// (the Telegram webhook) on B for the question and A for the Confirm, the
// page's polling and continue and the token exchange on B, userinfo on A.
// Then a second sign-in from the same browser uses the session made on B
// through A, and a code issued by A and replayed on B is refused.
func TestBinaryOIDCTwoInstances(t *testing.T) {
	m := startTwoInstances(t, false, "PAIRINGD_OIDC_ENABLED=true")
	a, b := m.in[0], m.in[1]
	rp := createOIDCClient(t, m.dir, m.envs[0])
	lb := newBalancer(t, a.base, b.base)
	hc := &http.Client{Transport: lb, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx = oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, hc), hc)

	lb.use(0)
	provider, err := oidc.NewProvider(ctx, multiPublicURL)
	if err != nil {
		t.Fatalf("discovery through A: %v\n%s", err, a.logs())
	}
	conf := oauth2.Config{ClientID: rp.ClientID, ClientSecret: rp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID, "profile"}}
	jar, _ := cookiejar.New(nil)
	br := &browser{t: t, c: &http.Client{Jar: jar, Transport: lb, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	// A: the authorization request and the page.
	pkce := oauth2.GenerateVerifier()
	page, token, match := signInPage(t, br, multiPublicURL, conf.AuthCodeURL("split-state", oidc.Nonce("split-nonce"), oauth2.S256ChallengeOption(pkce)))

	// The chat: /start on B, the Confirm press on A.
	const chat = 5151
	if err := postUpdate(b.base, tgUpdate(9001, chat, "/start "+token)); err != nil {
		t.Fatal(err)
	}
	m.waitUntil("the sign-in question", 20*time.Second, func() bool { return len(m.tg.Sent()) >= 1 })
	ask := m.tg.Sent()[0]
	if !strings.Contains(ask.Plain(), "Shop") || !strings.Contains(ask.Plain(), match) || len(ask.Buttons()) != 2 {
		t.Fatalf("question %q (match code %s)", ask.Plain(), match)
	}
	if err := postUpdate(a.base, tgCallback(9002, chat, ask.MessageID, *ask.Buttons()[0].CallbackData)); err != nil {
		t.Fatal(err)
	}
	m.waitUntil("the confirmation in chat", 20*time.Second, func() bool { return len(m.tg.Sent()) >= 2 })
	if done := m.tg.Sent()[1].Plain(); !strings.Contains(done, "signed in to Shop") {
		t.Fatalf("after confirm: %q", done)
	}

	// B: polling, continue, token exchange.
	lb.use(1)
	if st, _, body := br.get(page + "/status"); st != http.StatusOK || !strings.Contains(body, `"confirmed"`) {
		t.Fatalf("status on B: %d %s", st, body)
	}
	st, loc, _ := br.get(page)
	if st != http.StatusSeeOther {
		t.Fatalf("continue on B: %d %q", st, loc)
	}
	code := codeFrom(t, loc, "split-state", multiPublicURL)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange on B: %v\n%s", err, b.logs())
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: rp.ClientID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("id token from B: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil || c.Nonce != "split-nonce" || strings.Join(c.AMR, " ") != "chat_confirm telegram" {
		t.Fatalf("claims %+v %v", c, err)
	}

	// A: userinfo with B's access token; the code replayed on A is
	// refused and revokes that token on both.
	lb.use(0)
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != idt.Subject {
		t.Fatalf("userinfo on A: %v %+v", err, ui)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("code replay on A: %v", err)
	}
	lb.use(1)
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("B still accepts the access token of a replayed code")
	}

	// The session cookie set by B signs the browser in at once on A.
	lb.use(0)
	pkce = oauth2.GenerateVerifier()
	st, loc, _ = br.get(conf.AuthCodeURL("again", oidc.Nonce("n2"), oauth2.S256ChallengeOption(pkce)))
	if st != http.StatusFound {
		t.Fatalf("authorize again: %d", st)
	}
	if st, loc, _ = br.get(multiPublicURL + loc); st != http.StatusSeeOther {
		t.Fatalf("the session from B did not sign in on A: %d", st)
	}
	lb.use(1)
	tok, err = conf.Exchange(ctx, codeFrom(t, loc, "again", multiPublicURL), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	if idt2, err := provider.Verifier(&oidc.Config{ClientID: rp.ClientID}).Verify(ctx, tok.Extra("id_token").(string)); err != nil || idt2.Subject != idt.Subject {
		t.Fatalf("second sign-in: %v", err)
	}
	if lb.seen[0].Load() == 0 || lb.seen[1].Load() == 0 {
		t.Fatalf("requests per instance: %d, %d", lb.seen[0].Load(), lb.seen[1].Load())
	}
	for _, in := range m.in {
		if strings.Contains(in.logs(), token) || strings.Contains(in.logs(), code) {
			t.Fatal("a sign-in token or code reached a log")
		}
	}
}

// tgCallback is a button press in chat as Telegram posts it to a webhook.
func tgCallback(updateID int, chat int64, messageID int, data string) []byte {
	from := map[string]any{"id": chat, "is_bot": false, "first_name": "Ann", "language_code": "en"}
	b, _ := json.Marshal(map[string]any{"update_id": updateID, "callback_query": map[string]any{
		"id": "cb" + strconv.Itoa(updateID), "from": from, "chat_instance": "ci" + strconv.FormatInt(chat, 10), "data": data,
		"message": map[string]any{"message_id": messageID, "date": time.Now().Unix(), "chat": map[string]any{"id": chat, "type": "private"}},
	}})
	return b
}
