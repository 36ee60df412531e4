package messenger

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store/storetest"
	"github.com/pairingd/pairingd/templates"
)

// Two Pages of two different apps. Secrets are long and distinctive so a
// leak is easy to spot in logs.
const (
	pageA   = "111000111"
	tokenA  = "EAAtokenA-PAGE-ACCESS-aaaaaaaaaaaaaaaa"
	secretA = "app-secret-A-0123456789abcdef"
	verifyA = "verify-A-xyz"
	appA    = "1001"

	pageB   = "222000222"
	tokenB  = "EAAtokenB-PAGE-ACCESS-bbbbbbbbbbbbbbbb"
	secretB = "app-secret-B-fedcba9876543210"
	verifyB = "verify-B-xyz"
	appB    = "2002"

	loginURL = "https://shop.example/messenger-login"
	linkURL  = "https://shop.example/pair?buid={buid}"
)

var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t       testing.TB
	ctx     context.Context
	fb      *fbfake.Server
	store   *storetest.FaultStore // real SQLite in t.TempDir()
	clock   *pairingtest.Clock
	svc     *pairing.Service
	hub     *Hub
	threads ThreadState
	logs    *syncBuffer
	inbound *storetest.FaultyInbound
	worker  *pairing.InboundWorker
	obs     *pairingtest.Observer // what the hub reported it sent
}

type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvThreads(t, NewMemThreadState(), opts...)
}

// newEnvThreads is newEnv with the given thread owners (a database shared
// with another env stands for two instances).
func newEnvThreads(t testing.TB, threads ThreadState, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), fb: fbfake.New(t), store: storetest.SQLiteWithFaults(t),
		clock: pairingtest.NewClock(start), threads: threads, logs: &syncBuffer{}, obs: &pairingtest.Observer{}}
	e.fb.AddPage(pageA, tokenA, secretA)
	e.fb.AddPage(pageB, tokenB, secretB)
	var err error
	e.svc, err = pairing.New(e.store, pairing.Config{Secret: bytes.Repeat([]byte("s"), 32), LinkURL: linkURL}, pairing.WithClock(e.clock))
	if err != nil {
		t.Fatal(err)
	}
	texts, err := templates.Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fakeHost := strings.TrimPrefix(e.fb.URL(), "http://")
	fakeHost = fakeHost[:strings.IndexByte(fakeHost, '/')]
	cfg := Config{
		Pages: []PageConfig{
			{Name: "fb-shop", PageID: pageA, PageAccessToken: tokenA, AppID: appA, AppSecret: secretA, VerifyToken: verifyA,
				GraphURL: e.fb.URL(), LoginURL: loginURL},
			{Name: "fb-news", PageID: pageB, PageAccessToken: tokenB, AppID: appB, AppSecret: secretB, VerifyToken: verifyB,
				GraphURL: e.fb.URL(), FallbackLocale: "fr"},
		},
		AllowedRedirectHosts: append([]string{fakeHost}, DefaultRedirectHosts...),
		Threads:              e.threads,
		HandleTimeout:        5 * time.Second,
	}
	e.inbound = storetest.NewFaultyInbound(t, e.store.Store)
	e.worker = pairing.NewInboundWorker(e.inbound, pairing.InboundWorkerConfig{Clock: e.clock, Logger: log})
	for _, o := range opts {
		o(&cfg)
	}
	e.hub, err = New(cfg, channel.Deps[Pairing]{Service: e.svc, Intake: e.worker, Texts: texts, Log: log, Clock: e.clock, Observer: e.obs})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range e.hub.pages {
		p.graph.backoff = time.Millisecond
	}
	for _, ch := range e.hub.Channels() {
		e.svc.RegisterChannel(ch)
	}
	return e
}

// post delivers a webhook body signed with secret, then lets the inbound
// worker handle what is due, as Run would right after the nudge.
func (e *env) post(secret string, body []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := e.postOnly(secret, body)
	e.drain()
	return rec
}

// postOnly delivers a webhook body signed with secret; nothing is handled.
func (e *env) postOnly(secret string, body []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.hub.WebhookHandler().ServeHTTP(rec, fbfake.SignedRequest(secret, body))
	return rec
}

// drain handles every stored event that is due.
func (e *env) drain() int {
	e.t.Helper()
	n, err := e.worker.Drain(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// deliver posts events for page A and wants 200.
func (e *env) deliver(events ...map[string]any) {
	e.t.Helper()
	if rec := e.post(secretA, fbfake.Delivery(pageA, events...)); rec.Code != http.StatusOK {
		e.t.Fatalf("delivery: %d %s", rec.Code, rec.Body)
	}
}

// last returns the last message sent, failing if none.
func (e *env) last() fbfake.SentMessage {
	e.t.Helper()
	sent := e.fb.Sent()
	if len(sent) == 0 {
		e.t.Fatal("nothing sent")
	}
	return sent[len(sent)-1]
}

func (e *env) text(locale, key string) string { return e.hub.text(locale, key, nil) }

func keyA(psid string) pairing.LeadKey { return pairing.LeadKey{Channel: "fb-shop", ExternalID: psid} }
func keyB(psid string) pairing.LeadKey { return pairing.LeadKey{Channel: "fb-news", ExternalID: psid} }

var pinRE = regexp.MustCompile(`PIN[^0-9]*([0-9]{6})`)

// pinOf extracts the PIN and BUID from a pairing message.
func pinOf(t *testing.T, m fbfake.SentMessage) (pin, buid string) {
	t.Helper()
	g := pinRE.FindStringSubmatch(m.Text)
	if g == nil || len(m.Buttons) == 0 || m.Buttons[0].Type != "web_url" {
		t.Fatalf("not a pairing message: %+v", m)
	}
	u, err := url.Parse(m.Buttons[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	return g[1], u.Query().Get("buid")
}

func payloads(qr []fbfake.QuickReply) []string {
	var out []string
	for _, q := range qr {
		out = append(out, q.Payload)
	}
	return out
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("want %v, got %v", target, err)
	}
}
