package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// TestBinaryTelegramLoginThenAuthorize runs the real binary with a Telegram
// channel in polling mode pointed at the fake Bot API: /login in a private
// chat gets the PIN message, that PIN registers, a grant links, and the
// next PIN matches. The bot token never reaches the logs.
func TestBinaryTelegramLoginThenAuthorize(t *testing.T) {
	const token = "123456:AAE-secret-token-part"
	tg := tgfake.New(t, token)
	dir := t.TempDir()
	env := telegramEnv(dir, tg, "PAIRINGD_PAIRING_REISSUE_INTERVAL=1s")
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)
	login := func(n int) (buid, pin string) {
		t.Helper()
		tg.UserSends(4242, "/login", "en")
		sent, err := tg.WaitSent(ctx, n)
		if err != nil {
			t.Fatalf("no PIN message: %v\n%s", err, in.logs())
		}
		m := sent[n-1]
		if p := pinRE.FindStringSubmatch(m.Plain()); p != nil {
			pin = p[1]
		}
		for _, b := range m.Buttons() {
			if b.URL == nil {
				continue
			}
			if u := buidRE.FindStringSubmatch(*b.URL); u != nil {
				buid = u[1]
			}
		}
		if pin == "" || buid == "" {
			t.Fatalf("PIN message without PIN or link: %+v", m)
		}
		return buid, pin
	}

	buid, pin := login(1)
	code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": buid, "pin": pin})
	if code != 200 || out["outcome"] != "register" {
		t.Fatalf("authorize: %d %v", code, out)
	}
	grant, _ := out["grant"].(string)
	code, out = in.call("POST", "/v1/links", key, map[string]any{"grant": grant, "user_id": "tg-user"})
	if code != 200 || out["outcome"] != "linked" {
		t.Fatalf("link: %d %v", code, out)
	}

	// A second /login within the reissue interval (1 s here) is refused
	// politely; ask again once it has passed.
	time.Sleep(1100 * time.Millisecond)
	buid2, pin2 := login(2)
	if buid2 == buid {
		t.Fatal("a new PIN kept the old BUID")
	}
	code, out = in.call("POST", "/v1/authorize", key, map[string]any{"buid": buid2, "pin": pin2})
	if code != 200 || out["outcome"] != "match" || out["user_id"] != "tg-user" {
		t.Fatalf("authorize after link: %d %v", code, out)
	}
	code, out = in.call("GET", "/v1/links/tg-user", key, nil)
	if code != 200 || !strings.Contains(toJSON(out), `"channel":"telegram"`) {
		t.Fatalf("link: %d %v", code, out)
	}
	// Polled updates go through the inbound queue: both /login were
	// handled, and counted.
	waitFor(t, in, "the inbound counter", func() bool {
		return strings.Contains(in.metricsText(), `pairingd_queue_jobs_finished_total{queue="inbound",result="done"} 2`+"\n")
	})
	code, out = in.call("GET", "/readyz", "", nil)
	if code != 200 || !strings.Contains(toJSON(out), `"channel:telegram":"ok"`) {
		t.Fatalf("readyz: %d %v", code, out)
	}
	in.stop()
	for _, s := range []string{token, "AAE-secret-token-part", pin, buid, grant} {
		if strings.Contains(in.logs(), s) {
			t.Fatalf("secret %q in logs:\n%s", s, in.logs())
		}
	}
}

// telegramEnv is the environment of a binary in dir whose channel
// "telegram" long-polls the fake Bot API tg.
func telegramEnv(dir string, tg *tgfake.Server, extra ...string) []string {
	return baseEnv(dir, append([]string{
		"PAIRINGD_CHANNELS_0_NAME=telegram",
		"PAIRINGD_CHANNELS_0_TYPE=telegram",
		"PAIRINGD_CHANNELS_0_LINK_NOTICES=false", // link notices have their own tests (e2e_botfirst_test.go)
		"PAIRINGD_CHANNELS_0_TOKEN=" + tg.Token(),
		"PAIRINGD_CHANNELS_0_API_ENDPOINT=" + tg.Endpoint(),
		"PAIRINGD_CHANNELS_0_POLL_TIMEOUT=1s",
	}, extra...)...)
}

// waitBotStarted waits until the binary's bot registered its commands
// (it then polls for updates). It polls the fake: Wait's condition must
// not call the fake under its own lock.
func waitBotStarted(ctx context.Context, t *testing.T, in *instance, tg *tgfake.Server) {
	t.Helper()
	for tg.CallCount("setMyCommands") == 0 {
		if ctx.Err() != nil {
			t.Fatalf("bot did not register its commands\n%s", in.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
