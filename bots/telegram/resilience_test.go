package telegram

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pairingd/pairingd/pairing"
)

func TestBlockedBotMarksLeadBlocked(t *testing.T) {
	e := newEnv(t)
	e.run()
	_, buid := pinOf(t, e.reply(5001, "/login", "en"))
	e.tg.Block(5001)
	// The person blocked the bot right after writing: the answer gets 403.
	if got := e.send(5001, "/status", "en"); len(got) != 0 {
		t.Fatalf("sent to a blocked chat: %+v", got)
	}
	if st := e.status(5001); !st.Lead.Blocked {
		t.Fatal("lead not marked blocked")
	}
	if !slices.ContainsFunc(e.siteEvents(), func(ev pairing.SiteEvent) bool { return ev.Type == pairing.EventLeadBlocked }) {
		t.Fatal("no lead.blocked event")
	}
	// The site's resend is refused without calling Telegram.
	e.clock.Advance(2 * time.Minute)
	calls := e.tg.CallCount("sendMessage")
	_, err := e.svc.ResendPIN(e.ctx, buid)
	wantErr(t, err, pairing.ErrChannelUnavailable)
	if e.tg.CallCount("sendMessage") != calls {
		t.Fatal("sent to a blocked lead")
	}
	// SendPIN itself maps the 403.
	pin := pairing.IssuedPIN{PIN: "123456", URL: "https://shop.example/p", ExpiresAt: e.clock.Now().Add(time.Minute), Lead: e.status(5001).Lead}
	err = e.bot.SendPIN(e.ctx, pin)
	var ce *pairing.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, pairing.ErrChannelUnavailable) || !errors.Is(ce.Cause, ErrBlocked) || ce.Channel != chName {
		t.Fatalf("SendPIN to a blocked chat: %v", err)
	}
	// Writing again unblocks.
	e.tg.Unblock(5001)
	e.reply(5001, "/help", "en")
	if e.status(5001).Lead.Blocked {
		t.Fatal("still blocked after writing")
	}
}

func TestRateLimitedSendIsRetried(t *testing.T) {
	e := newEnv(t)
	e.run()
	e.tg.FailNext("sendMessage", 429, 3)
	e.tg.FailNext("sendMessage", 429, 1)
	pinOf(t, e.reply(5001, "/login", "en"))
	if s := e.slept(); !slices.Contains(s, 3*time.Second) || !slices.Contains(s, time.Second) {
		t.Fatalf("retry_after not waited out: %v", s)
	}
	if n := e.tg.CallCount("sendMessage"); n != 3 {
		t.Fatalf("%d sendMessage calls, want 3", n)
	}

	// Three 429s in a row outlast the send's retries: the update fails and
	// is taken again; the person gets one answer.
	for range 3 {
		e.tg.FailNext("sendMessage", 429, 1)
	}
	if got := e.reply(5001, "/help", "en").Plain(); got != e.txt("en", "telegram_help", nil) {
		t.Fatal(got)
	}

	// A long retry_after is not waited out inside a resend: the site gets
	// a RetryError with Telegram's delay.
	e.tg.FailNext("sendMessage", 429, 45)
	pin := pairing.IssuedPIN{PIN: "123456", URL: "https://shop.example/p", ExpiresAt: e.clock.Now().Add(time.Minute), Lead: e.status(5001).Lead}
	err := e.bot.SendPIN(e.ctx, pin)
	var re *pairing.RetryError
	if !errors.As(err, &re) || re.RetryAfter != 45*time.Second || !errors.Is(err, pairing.ErrRateLimited) {
		t.Fatalf("long 429: %v", err)
	}
	// Any other failure is a channel failure.
	e.tg.FailNext("sendMessage", 500, 0)
	err = e.bot.SendPIN(e.ctx, pin)
	var ce *pairing.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, pairing.ErrChannelFailed) || !errors.Is(ce.Cause, ErrUnavailable) {
		t.Fatalf("500: %v", err)
	}
}

func TestPollingHonoursRetryAfterAndBackoff(t *testing.T) {
	e := newEnv(t)
	e.tg.FailNext("getUpdates", 429, 7)
	e.tg.FailNext("getUpdates", 502, 0)
	e.tg.FailNext("getUpdates", 409, 0)
	e.run()
	e.reply(5001, "/help", "en")
	s := e.slept()
	if len(s) < 3 || s[0] != 7*time.Second || s[1] != 10*time.Millisecond || s[2] != 20*time.Millisecond {
		t.Fatalf("waits %v", s)
	}
	if err := e.bot.Health(); err != nil {
		t.Fatalf("health after recovery: %v", err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "409 Conflict") || !strings.Contains(logs, "retry after 7") {
		t.Fatalf("failures not logged:\n%s", logs)
	}
}

func TestStartupRetriesUntilTelegramAnswers(t *testing.T) {
	e := newEnv(t)
	e.tg.FailNext("getMe", 502, 0)
	e.tg.FailNext("getMe", 502, 0)
	e.tg.FailNext("deleteWebhook", 500, 0)
	e.run()
	if n := e.tg.CallCount("getMe"); n != 3 {
		t.Fatalf("%d getMe calls", n)
	}
	e.reply(5001, "/help", "en")
	if err := e.bot.Health(); err != nil {
		t.Fatal(err)
	}
}

func TestWrongTokenIsReportedAndRetried(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.Token = "7712345678:AAWrongWrongWrongWrongWrongWrong-xyz" }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(ctx) }()
	e.wait(func() bool { return e.bot.Health() != nil && len(e.slept()) >= 3 })
	err := e.bot.Health()
	if !errors.Is(err, ErrTokenRefused) || !strings.Contains(err.Error(), "401 Unauthorized") || strings.Contains(err.Error(), "AAWrong") {
		t.Fatalf("health %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(e.logs.String(), "AAWrong") || !strings.Contains(e.logs.String(), "refused the bot token") {
		t.Fatalf("logs:\n%s", e.logs.String())
	}
}

func TestMyChatMemberKeepsBlockedFlag(t *testing.T) {
	e := newEnv(t)
	e.run()
	e.reply(5001, "/help", "en")
	e.tg.MemberStatus(5001, "kicked")
	e.idle()
	if !e.status(5001).Lead.Blocked {
		t.Fatal("kicked: not blocked")
	}
	e.tg.MemberStatus(5001, "member")
	e.idle()
	if e.status(5001).Lead.Blocked {
		t.Fatal("member: still blocked")
	}
	// Someone who never wrote blocks the bot: nothing to record, no error.
	e.tg.MemberStatus(5999, "kicked")
	e.idle()
	if e.status(5999).Lead.ID != 0 || strings.Contains(e.logs.String(), "update failed") {
		t.Fatal("unknown chat")
	}
	// The bot added to a group is not a lead.
	e.tg.PushUpdate(`{"my_chat_member":{"chat":{"id":-100200,"type":"supergroup","title":"G"},"from":{"id":5001,"is_bot":false,"first_name":"A"},"date":1,` +
		`"old_chat_member":{"user":{"id":7712345678,"is_bot":true,"first_name":"P"},"status":"left"},"new_chat_member":{"user":{"id":7712345678,"is_bot":true,"first_name":"P"},"status":"member"}}}`)
	e.idle()
	if e.persons() != 1 {
		t.Fatalf("%d persons", e.persons())
	}
}

func TestDuplicateUpdatesHandledOnce(t *testing.T) {
	e := newEnv(t)
	e.run()
	body := func(id int, text string) string {
		return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"from":{"id":5001,"is_bot":false,"first_name":"A","language_code":"en"},`+
			`"chat":{"id":5001,"type":"private"},"date":1,"text":%q}}`, id, id, text)
	}
	e.tg.PushUpdate(body(900, "/login"))
	e.idle()
	// A restart before the offset confirmed it: Telegram sends it again.
	e.tg.PushUpdate(body(900, "/login"))
	e.idle()
	if n := len(e.tg.Sent()); n != 1 {
		t.Fatalf("%d messages for one update", n)
	}
	// Update ids may start again lower (Telegram picks a random one after a
	// week without updates): still handled.
	e.tg.PushUpdate(body(12, "/help"))
	e.idle()
	if sent := e.tg.Sent(); len(sent) != 2 || sent[1].Plain() != e.txt("en", "telegram_help", nil) {
		t.Fatalf("lower id: %+v", sent)
	}
}

// A failing update is taken again by the intake (with backoff) until it
// works; a poison update is given up after the intake's max age, and the
// chat's next update works.
func TestFailedUpdateIsTakenAgainThenGivenUp(t *testing.T) {
	fl := &flaky{}
	e := newEnv(t, func(e *env) { e.wrap = func(p Pairing) Pairing { fl.Pairing = p; return fl } })
	e.run()
	fl.fails.Store(2)
	if got := e.reply(5001, "/help", "en").Plain(); got != e.txt("en", "telegram_help", nil) {
		t.Fatal(got)
	}
	fl.fails.Store(1 << 30)
	if got := e.send(5001, "/status", "en"); len(got) != 0 {
		t.Fatalf("answered a failing update: %+v", got)
	}
	e.clock.Advance(time.Hour)
	e.drain()
	if e.inbound.Pending() || !strings.Contains(e.logs.String(), "giving up on an event after its max age") {
		t.Fatal("poison update not given up")
	}
	fl.fails.Store(0)
	e.reply(5001, "/help", "en")
}

// Updates of different chats are handled side by side, those of one
// chat in order.
func TestBatchKeepsOrderPerChat(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.tg.UserSends(6000+int64(i), "/help", "en")
		e.tg.UserSends(6000+int64(i), "/status", "en")
	}
	e.run()
	e.idle()
	for i := range 5 {
		got := e.tg.SentTo(6000 + int64(i))
		if len(got) != 2 || got[0].Plain() != e.txt("en", "telegram_help", nil) || got[1].Plain() != e.txt("en", "telegram_status_not_linked", nil) {
			t.Fatalf("chat %d: %+v", i, got)
		}
	}
}

// Cancelling Run interrupts the long poll at once and leaves no
// goroutine behind.
func TestPollingStopsOnCancelWithoutLeaks(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.PollTimeout = 50 * time.Second }))
	// The store's own goroutines live until the test's cleanup.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer e.tg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(ctx) }()
	e.reply(5001, "/login", "en")
	e.wait(func() bool { return e.tg.CallCount("getUpdates") >= 2 })
	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not stop")
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("stopping took %v", d)
	}
}

func TestWebhookModeStopsWithoutLeaks(t *testing.T) {
	e := newEnv(t, webhookMode("https://pairing.example"))
	// The store's own goroutines live until the test's cleanup.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer e.tg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(ctx) }()
	e.wait(func() bool { return e.tg.Webhook().URL != "" })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The webhook stays registered: other instances keep serving it.
	if e.tg.CallCount("deleteWebhook") != 0 {
		t.Fatal("webhook deleted on shutdown")
	}
}
