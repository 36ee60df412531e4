package telegram

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
	"github.com/pairingd/pairingd/templates"
)

// The token is long and distinctive so a leak is easy to spot.
const (
	token   = "7712345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ-leak"
	linkURL = "https://shop.example/pair?buid={buid}"
	chName  = "telegram"
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
	t     testing.TB
	ctx   context.Context
	tg    *tgfake.Server
	store *store.Store // real SQLite in t.TempDir()
	clock *pairingtest.Clock
	svc   *pairing.Service
	texts *templates.Catalog
	bot   *Bot
	logs  *syncBuffer
	obs   *pairingtest.Observer // what the bot reported it sent
	cfg   Config
	// wrap, when set, stands between the bot and the service (faults).
	wrap func(Pairing) Pairing

	// inbound and worker are the inbound intake of both modes.
	inbound *storetest.FaultyInbound
	worker  *pairing.InboundWorker

	mu     sync.Mutex
	sleeps []time.Duration
}

type envOption func(*env)

// withConfig changes the bot's configuration.
func withConfig(f func(*Config)) envOption { return func(e *env) { f(&e.cfg) } }

// withTexts replaces the catalog.
func withTexts(c *templates.Catalog) envOption { return func(e *env) { e.texts = c } }

// webhookMode runs the bot in webhook mode behind publicURL.
func webhookMode(publicURL string) envOption {
	return withConfig(func(c *Config) { c.Mode, c.PublicURL = ModeWebhook, publicURL })
}

// withLinkURL replaces the site's PIN page.
func withLinkURL(u string) envOption {
	return func(e *env) {
		var err error
		e.svc, err = pairing.New(e.store, pairing.Config{Secret: bytes.Repeat([]byte("s"), 32), LinkURL: u}, pairing.WithClock(e.clock))
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), tg: tgfake.New(t, token), store: storetest.SQLite(t),
		clock: pairingtest.NewClock(start), logs: &syncBuffer{}, obs: &pairingtest.Observer{}}
	var err error
	e.svc, err = pairing.New(e.store, pairing.Config{Secret: bytes.Repeat([]byte("s"), 32), LinkURL: linkURL}, pairing.WithClock(e.clock))
	if err != nil {
		t.Fatal(err)
	}
	e.texts, err = templates.Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.inbound = storetest.NewFaultyInbound(t, e.store)
	e.worker = pairing.NewInboundWorker(e.inbound, pairing.InboundWorkerConfig{Clock: e.clock, Logger: log})
	e.cfg = Config{Name: chName, Token: token, APIEndpoint: e.tg.Endpoint(), PollTimeout: 2 * time.Second}
	for _, o := range opts {
		o(e)
	}
	var svc Pairing = e.svc
	if e.wrap != nil {
		svc = e.wrap(e.svc)
	}
	e.bot, err = New(e.cfg, channel.Deps[Pairing]{Service: svc, Intake: e.worker, Texts: e.texts, Log: log, Clock: e.clock, Observer: e.obs})
	if err != nil {
		t.Fatal(err)
	}
	e.bot.sleep = e.sleep
	e.bot.backoffMin, e.bot.backoffMax = 10*time.Millisecond, 50*time.Millisecond
	e.svc.RegisterChannel(e.bot)
	return e
}

// sleep records the wait and waits a moment only, so retry_after and
// backoffs cost no test time.
func (e *env) sleep(ctx context.Context, d time.Duration) error {
	e.mu.Lock()
	e.sleeps = append(e.sleeps, d)
	e.mu.Unlock()
	return channel.Sleep(ctx, time.Millisecond)
}

func (e *env) slept() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

// run starts Run in the background; the test's end stops it and checks it
// returned nil.
func (e *env) run() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			e.t.Error("Run did not stop")
		}
	})
	// Ready: polling has begun, or the webhook is registered.
	e.wait(func() bool {
		if e.bot.cfg.Mode == ModeWebhook {
			return e.tg.Webhook().URL != ""
		}
		return e.tg.CallCount("getUpdates") > 0
	})
}

// wait polls cond for up to 5 s.
func (e *env) wait(cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatal("timed out waiting")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// idle waits until the bot handled every queued update: until the fake
// has them confirmed (polling: stored in the intake; webhook mode:
// accepted by the webhook), and then the intake's worker handles them.
func (e *env) idle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	if err := e.tg.WaitIdle(ctx); err != nil {
		e.t.Fatalf("updates not handled: %v (%d pending)", err, e.tg.Pending())
	}
	e.drain()
	// An update that failed is due again after the intake's backoff: step
	// the clock (ten minutes at most) until every update is done.
	for range 600 {
		if !e.inbound.Pending() {
			return
		}
		e.clock.Advance(time.Second)
		e.drain()
	}
}

// drain handles every stored update that is due.
func (e *env) drain() int {
	e.t.Helper()
	n, err := e.worker.Drain(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// send has chat id write text (language lang) and waits until it is
// handled; it returns the messages sent (or edited) meanwhile.
func (e *env) send(chatID int64, text, lang string) []tgfake.SentMessage {
	e.t.Helper()
	before := len(e.tg.Sent())
	e.tg.UserSends(chatID, text, lang)
	e.idle()
	return e.tg.Sent()[before:]
}

// reply is send wanting exactly one message back.
func (e *env) reply(chatID int64, text, lang string) tgfake.SentMessage {
	e.t.Helper()
	got := e.send(chatID, text, lang)
	if len(got) != 1 {
		e.t.Fatalf("%q: want one answer, got %d: %+v", text, len(got), got)
	}
	if got[0].ChatID != chatID {
		e.t.Fatalf("%q: answer went to chat %d", text, got[0].ChatID)
	}
	return got[0]
}

// txt renders a catalog text the way the bot does, as the chat shows it.
func (e *env) txt(locale, key string, data any) string {
	return tgfake.Visible(e.bot.text(locale, key, data))
}

func key(chatID int64) pairing.LeadKey {
	return pairing.LeadKey{Channel: chName, ExternalID: strconv.FormatInt(chatID, 10)}
}

func (e *env) status(chatID int64) pairing.LeadStatus {
	e.t.Helper()
	st, err := e.svc.Status(e.ctx, key(chatID))
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

var pinRE = regexp.MustCompile(`PIN[^0-9]*([0-9]{6})`)

// pinOf extracts the PIN and BUID from a pairing message: the PIN from the
// text, the BUID from the link in the text (and the button, when there is
// one, must carry the same link).
func pinOf(t testing.TB, m tgfake.SentMessage) (pin, buid string) {
	t.Helper()
	plain := m.Plain()
	g := pinRE.FindStringSubmatch(plain)
	link := regexp.MustCompile(`https?://\S+`).FindString(plain)
	if g == nil || link == "" {
		t.Fatalf("not a pairing message: %q", plain)
	}
	if b := m.Buttons(); len(b) > 0 && (b[0].URL == nil || *b[0].URL != link) {
		t.Fatalf("button %+v does not carry the link %q", b[0], link)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return g[1], u.Query().Get("buid")
}

// webhookRequest builds a delivery with the given secret header ("" for
// none).
func webhookRequest(secret string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, WebhookPath(chName), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if secret != "" {
		r.Header.Set(tgfake.SecretHeader, secret)
	}
	return r
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("want %v, got %v", target, err)
	}
}

func (e *env) siteEvents() []pairing.SiteEvent {
	e.t.Helper()
	evs, err := e.store.SiteEventsAfter(e.ctx, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *env) persons() int64 {
	e.t.Helper()
	n, err := e.store.Persons(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) audit() []pairing.AuditEvent {
	e.t.Helper()
	evs, err := e.store.AuditEvents(e.ctx, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}
