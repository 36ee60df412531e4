package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// loadEnv is the notification path in process: SQLite, the service, the
// Telegram adapter against the fake Bot API, and the outbox worker as
// serve builds it from config.
type loadEnv struct {
	t   testing.TB
	ctx context.Context
	st  *store.Store
	svc *pairing.Service
	tg  *tgfake.Server
	cfg Config
}

const loadToken = "123456:AAE-load-test-token-part"

func newLoadEnv(t testing.TB, tune func(*pairing.JobsConfig, *pairing.Pace)) *loadEnv {
	t.Helper()
	ctx := context.Background()
	cfg := defaultConfig()
	cfg.Database.DSN = filepath.Join(t.TempDir(), "pairingd.db")
	cfg.Pairing.LinkURL = "https://shop.example/pair?buid={buid}"
	tg := tgfake.New(t, loadToken)
	bc := telegram.DefaultConfig()
	bc.Name, bc.Token, bc.APIEndpoint = "telegram", loadToken, tg.Endpoint()
	tune(&cfg.Jobs, &bc.Pace)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := newService(ctx, cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	texts, err := templates.Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	bot, err := telegram.New(bc, channel.Deps[telegram.Pairing]{Service: svc, Intake: inboundWorker(cfg, st, log, svc.Config().Secret), Texts: texts, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterChannel(bot)
	return &loadEnv{t: t, ctx: ctx, st: st, svc: svc, tg: tg, cfg: cfg}
}

// linkUsers links chats 1..n to site users user-1..user-n.
func (e *loadEnv) linkUsers(n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		p, err := e.svc.IssuePIN(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: strconv.Itoa(i)}, pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{Force: true})
		if err != nil {
			e.t.Fatal(err)
		}
		res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: "user-" + strconv.Itoa(i)})
		if err != nil || res.Outcome != pairing.OutcomeLinked {
			e.t.Fatalf("link %d: %v %v", i, res.Outcome, err)
		}
	}
}

// runWorker runs the worker until the test ends.
func (e *loadEnv) runWorker() {
	e.t.Helper()
	w, err := e.svc.NewNotificationWorker(e.cfg.Jobs.NotificationWorkerConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestNotifyThousandToHundredPaced is the issue's proof: 1,000
// notifications to 100 linked users are all delivered exactly once to a
// fake Bot API that enforces Telegram's flood limits (1 message per chat
// and 30 per bot in any window) with 429s, and the worker's pacing meets
// no 429 at all.
//
// At Telegram's real limits (1 s window) this takes over 40 s, so by
// default both the fake's limits and the pacing are scaled by the same
// factor 5: a 200 ms window with the same counts, and the pacing config
// (24 msg/s per bot -> 120/s, 1 s per chat -> 200 ms). PAIRINGD_FULL_SCALE=1
// runs it at full scale (1 s window, the default pacing config).
func TestNotifyThousandToHundredPaced(t *testing.T) {
	scale := 5.0
	if os.Getenv("PAIRINGD_FULL_SCALE") != "" {
		scale = 1
	} else if testing.Short() {
		t.Skip("takes ~10 s; -short skips it")
	}
	window := time.Duration(float64(time.Second) / scale)
	e := newLoadEnv(t, func(j *pairing.JobsConfig, pace *pairing.Pace) {
		if scale != 1 {
			pace.RatePerSecond = 24 * scale
			pace.PerChatInterval = window
		}
		j.PollInterval = 50 * time.Millisecond
	})
	e.tg.EnforceRateLimits(tgfake.RateLimits{PerChat: 1, PerBot: 30, Window: window})
	// PAIRINGD_NOTIFY_PER_USER=100 makes it 10,000 notifications.
	const users = 100
	perUser := 10
	if v, err := strconv.Atoi(os.Getenv("PAIRINGD_NOTIFY_PER_USER")); err == nil && v > 0 {
		perUser = v
	}
	e.linkUsers(users)
	quiet := e.authorizeLatency(100, "quiet")
	var ids []int64
	for round := range perUser {
		for u := 1; u <= users; u++ {
			m, err := e.svc.Notify(e.ctx, pairing.NotifyRequest{UserID: "user-" + strconv.Itoa(u),
				Text: fmt.Sprintf("notification %d for user %d", round, u), IdempotencyKey: fmt.Sprintf("n-%d-%d", u, round)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
	}
	began := time.Now()
	e.runWorker()
	// The outbox must not slow pairing down: authorize while it delivers.
	busy := e.authorizeLatency(100, "busy")
	ctx, cancel := context.WithTimeout(e.ctx, time.Duration(float64(3*time.Minute)/scale*float64(perUser)/10))
	defer cancel()
	sent, err := e.tg.WaitSent(ctx, users*perUser)
	if err != nil {
		t.Fatalf("%v; 429 answered: %d", err, e.tg.TooManyRequests())
	}
	took := time.Since(began)
	seen := map[string]int{}
	for _, m := range sent {
		seen[fmt.Sprintf("%d|%s", m.ChatID, m.Text)]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%q delivered %d times", k, n)
		}
	}
	if len(seen) != users*perUser {
		t.Fatalf("%d distinct messages delivered, want %d", len(seen), users*perUser)
	}
	if n := e.tg.TooManyRequests(); n != 0 {
		t.Fatalf("the fake answered %d 429s: pacing is too fast", n)
	}
	// Every delivery is recorded as delivered (the last results may still
	// be being written).
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			m, err := e.svc.Message(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			d := m.Deliveries[0]
			if d.Status == pairing.DeliveryDelivered && d.Attempts == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d: %+v, want delivered on the first attempt", id, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("%d notifications to %d chats in %v at scale 1/%v (%.0f msg/s), no 429; authorize p99 %v quiet, %v while delivering",
		users*perUser, users, took.Round(time.Millisecond), scale, float64(users*perUser)/took.Seconds(), quiet, busy)
	if busy > 10*quiet+50*time.Millisecond {
		t.Fatalf("authorize p99 %v while the outbox delivers, %v without: the outbox slows pairing down", busy, quiet)
	}
}

// authorizeLatency issues and spends n PINs for new chats, one after the
// other, and returns the 99th percentile of the authorize calls.
func (e *loadEnv) authorizeLatency(n int, tag string) time.Duration {
	e.t.Helper()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		p, err := e.svc.IssuePIN(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: fmt.Sprintf("probe-%s-%d", tag, i)},
			pairing.Profile{}, pairing.IssueOptions{Force: true})
		if err != nil {
			e.t.Fatal(err)
		}
		begin := time.Now()
		if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN}); err != nil {
			e.t.Fatal(err)
		}
		lat = append(lat, time.Since(begin))
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// BenchmarkOutboxDelivery measures delivery throughput: b.N queued
// notifications to 100 chats, sent by one worker through the Telegram
// adapter to the fake Bot API over HTTP, results recorded in SQLite. The
// pacing is lifted (no per-chat interval, 1e6 msg/s), so this is the
// worker's own ceiling, not Telegram's.
func BenchmarkOutboxDelivery(b *testing.B) {
	e := newLoadEnv(b, func(j *pairing.JobsConfig, pace *pairing.Pace) {
		pace.RatePerSecond = 1e6
		pace.PerChatInterval = 0
		j.PollInterval = 10 * time.Millisecond
	})
	const users = 100
	e.linkUsers(users)
	for i := range b.N {
		if _, err := e.svc.Notify(e.ctx, pairing.NotifyRequest{UserID: "user-" + strconv.Itoa(i%users+1), Text: "n" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	e.runWorker()
	if _, err := e.tg.WaitSent(e.ctx, b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "delivered/s")
}
