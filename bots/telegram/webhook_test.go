package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

const loginUpdate = `{"update_id":700,"message":{"message_id":1,"from":{"id":5001,"is_bot":false,"first_name":"Ann","language_code":"en"},` +
	`"chat":{"id":5001,"type":"private"},"date":1700000000,"text":"/login","entities":[{"type":"bot_command","offset":0,"length":6}]}}`

func TestWebhookRefusalsChangeNothing(t *testing.T) {
	e := newEnv(t, webhookMode("https://pairing.example"))
	h := e.bot.WebhookHandler()
	good := e.bot.secret
	cases := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"no secret", webhookRequest("", []byte(loginUpdate)), 401},
		{"wrong secret", webhookRequest(good+"x", []byte(loginUpdate)), 401},
		{"secret prefix", webhookRequest(good[:10], []byte(loginUpdate)), 401},
		{"not JSON", webhookRequest(good, []byte(`{"update_id":`)), 400},
		{"no update_id", webhookRequest(good, []byte(`{"message":{"text":"/login"}}`)), 400},
		{"update_id string", webhookRequest(good, []byte(`{"update_id":"700"}`)), 400},
		{"array", webhookRequest(good, []byte(`[]`)), 400},
		{"too large", webhookRequest(good, bytes.Repeat([]byte(" "), maxWebhookBody+1)), 413},
		{"GET", httptest.NewRequest(http.MethodGet, WebhookPath(chName), nil), 405},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req)
		if rec.Code != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.status)
		}
		wantErrorShape(t, rec, map[int]string{401: "unauthorized", 400: "invalid_request", 413: "payload_too_large", 405: "method_not_allowed"}[tc.status])
	}
	if len(e.tg.Sent()) != 0 || e.persons() != 0 || len(e.inbound.Rows()) != 0 {
		t.Fatal("a refused delivery changed something")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhookRequest(good, []byte(loginUpdate)))
	e.drain()
	if rec.Code != 200 || len(e.tg.Sent()) != 1 {
		t.Fatalf("good delivery: %d, %d sent", rec.Code, len(e.tg.Sent()))
	}
	pinOf(t, e.tg.Sent()[0])
	if !strings.Contains(e.logs.String(), "without the right secret token") {
		t.Fatal("refusals not logged")
	}

	// A bot in polling mode serves no webhook, whatever the secret.
	p := newEnv(t)
	rec = httptest.NewRecorder()
	p.bot.WebhookHandler().ServeHTTP(rec, webhookRequest(p.bot.secret, []byte(loginUpdate)))
	if rec.Code != 404 {
		t.Fatalf("polling bot's webhook: %d", rec.Code)
	}
	wantErrorShape(t, rec, "not_found")
}

// wantErrorShape checks a refusal is the API's error object with code.
func wantErrorShape(t *testing.T, rec *httptest.ResponseRecorder, code string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q: %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != code || b.Error.Message == "" {
		t.Fatalf("body %s (%v), want code %s", rec.Body, err, code)
	}
}

// The whole webhook mode: setWebhook with the secret and allowed updates,
// then Telegram posting an update, the bot answering.
func TestWebhookModeEndToEnd(t *testing.T) {
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != WebhookPath(chName) {
			http.NotFound(w, r)
			return
		}
		(*handler.Load()).ServeHTTP(w, r)
	}))
	defer srv.Close()
	e := newEnv(t, webhookMode(srv.URL+"/"))
	h := e.bot.WebhookHandler()
	handler.Store(&h)
	e.run()

	hook := e.tg.Webhook()
	if hook.URL != srv.URL+"/webhooks/telegram/telegram" || hook.SecretToken == "" || hook.SecretToken != e.bot.secret ||
		!slices.Equal(hook.AllowedUpdates, []string{"message", "callback_query", "my_chat_member"}) {
		t.Fatalf("webhook %+v", hook)
	}
	m := e.reply(5001, "/login", "ru")
	pinOf(t, m)
	if !strings.Contains(m.Plain(), "10 минут") {
		t.Fatalf("%q", m.Plain())
	}
	if n := e.tg.CallCount("getUpdates") + e.tg.CallCount("deleteWebhook"); n != 0 {
		t.Fatalf("webhook mode polled (%d calls)", n)
	}
	if d := e.tg.Deliveries(); len(d) != 1 || d[0].Status != 200 {
		t.Fatalf("deliveries %+v", d)
	}
	if err := e.bot.Health(); err != nil {
		t.Fatal(err)
	}
}

// The secret is derived from the token when not configured: the same in
// every instance, different per channel, never the token itself.
func TestWebhookSecret(t *testing.T) {
	a := newEnv(t, webhookMode("https://pairing.example"))
	b := newEnv(t, webhookMode("https://other.example"))
	c := newEnv(t, webhookMode("https://pairing.example"), withConfig(func(c *Config) { c.Name = "tg-two" }))
	d := newEnv(t, webhookMode("https://pairing.example"), withConfig(func(c *Config) { c.WebhookSecret = "configured_Secret-1" }))
	if a.bot.secret != b.bot.secret || a.bot.secret == c.bot.secret || !secretPattern.MatchString(a.bot.secret) ||
		len(a.bot.secret) < 40 || strings.Contains(token, a.bot.secret) || d.bot.secret != "configured_Secret-1" {
		t.Fatalf("secrets %q %q %q %q", a.bot.secret, b.bot.secret, c.bot.secret, d.bot.secret)
	}
}

// flaky fails TouchLead while fails > 0: the store down for a moment.
type flaky struct {
	Pairing
	fails atomic.Int32
}

func (f *flaky) TouchLead(ctx context.Context, key pairing.LeadKey, p pairing.Profile) (pairing.Lead, error) {
	if f.fails.Add(-1) >= 0 {
		return pairing.Lead{}, pairing.ErrUnavailable
	}
	return f.Pairing.TouchLead(ctx, key, p)
}

// The webhook answers 200 once the update is stored; a failed handling is
// tried again by the worker (not by Telegram), duplicates have one
// effect, and only the database down answers 500.
func TestWebhookDuplicatesAndRetries(t *testing.T) {
	fl := &flaky{}
	e := newEnv(t, webhookMode("https://pairing.example"), func(e *env) {
		e.wrap = func(p Pairing) Pairing { fl.Pairing = p; return fl }
	})
	h := e.bot.WebhookHandler()
	post := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, webhookRequest(e.bot.secret, []byte(loginUpdate)))
		e.drain()
		return rec.Code
	}
	// The pairing store fails once: the update is stored, answered 200,
	// and kept for a retry.
	fl.fails.Store(1)
	if code := post(); code != 200 || len(e.tg.Sent()) != 0 {
		t.Fatalf("failing handling: %d, %d sent", code, len(e.tg.Sent()))
	}
	rows := e.inbound.Rows()
	if len(rows) != 1 || rows[0].Source != "telegram:"+chName || rows[0].Key != "700" || rows[0].Group != "chat:5001" ||
		!rows[0].NextAttemptAt.After(e.clock.Now()) || rows[0].LastError == "" || strings.Contains(rows[0].LastError, token) {
		t.Fatalf("rows %+v", rows)
	}
	// Telegram delivers the same update again: nothing new.
	if code := post(); code != 200 || len(e.tg.Sent()) != 0 || len(e.inbound.Rows()) != 1 {
		t.Fatalf("duplicate while pending: %d", code)
	}
	e.clock.Advance(10 * time.Second)
	if n := e.drain(); n != 1 || len(e.tg.Sent()) != 1 {
		t.Fatalf("retry: %d handled, %d sent", n, len(e.tg.Sent()))
	}
	if code := post(); code != 200 || len(e.tg.Sent()) != 1 {
		t.Fatalf("duplicate after handling: %d, %d sent", code, len(e.tg.Sent()))
	}
	issued := 0
	for _, a := range e.audit() {
		if a.Action == "pin_issue" {
			issued++
		}
	}
	if issued != 1 {
		t.Fatalf("%d PINs issued", issued)
	}
	// The database down: 500, so Telegram delivers again.
	e.inbound.FailEnqueue(pairing.ErrUnavailable)
	other := strings.Replace(loginUpdate, `"update_id":700`, `"update_id":701`, 1)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhookRequest(e.bot.secret, []byte(other)))
	if rec.Code != 500 {
		t.Fatalf("database down: %d", rec.Code)
	}
	wantErrorShape(t, rec, "internal")
}

// hangingTransport never answers until the request is cancelled.
type hangingTransport struct{}

func (hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// The Bot API hanging: the webhook answers at once; the worker's handling
// is bounded by HandleTimeout and the update is kept for a retry.
func TestWebhookAnswersWhileBotAPIHangs(t *testing.T) {
	e := newEnv(t, webhookMode("https://pairing.example"), withConfig(func(c *Config) {
		c.HandleTimeout = 150 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: hangingTransport{}}
	}))
	// /help: its answer is retried when it cannot be sent (a PIN message
	// is not: the PIN is spent, the person asks again).
	help := strings.NewReplacer(`"text":"/login"`, `"text":"/help"`, `"length":6`, `"length":5`).Replace(loginUpdate)
	began := time.Now()
	rec := httptest.NewRecorder()
	e.bot.WebhookHandler().ServeHTTP(rec, webhookRequest(e.bot.secret, []byte(help)))
	if rec.Code != 200 || time.Since(began) > 100*time.Millisecond {
		t.Fatalf("webhook %d after %v", rec.Code, time.Since(began))
	}
	began = time.Now()
	e.drain()
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("handling took %v", d)
	}
	if r := e.inbound.Rows(); len(r) != 1 || !r[0].DoneAt.IsZero() || !r[0].NextAttemptAt.After(e.clock.Now()) {
		t.Fatalf("rows %+v", r)
	}
}
