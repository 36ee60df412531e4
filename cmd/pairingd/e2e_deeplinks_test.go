package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// TestBinaryTelegramDeepLink runs the real binary with a Telegram channel
// against the fake Bot API: the site creates a deep link over REST, the
// person sends /start <token>, sees the site account with a confirm
// button, presses it, and GET /v1/links shows the link. A reused token is
// refused in chat. The token never reaches the logs.
func TestBinaryTelegramDeepLink(t *testing.T) {
	const token = "123456:AAE-secret-token-part"
	tg := tgfake.New(t, token)
	dir := t.TempDir()
	env := telegramEnv(dir, tg, "PAIRINGD_PAIRING_DEEP_LINK_TTL=5m")
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)

	code, out := in.call("POST", "/v1/deep-links", key, map[string]any{"user_id": "site-user-9", "channel": "telegram", "display_name": "ann@shop.example"})
	if code != 201 {
		t.Fatalf("deep link: %d %v\n%s", code, out, in.logs())
	}
	dlToken, _ := out["token"].(string)
	if out["url"] != "https://t.me/pairing_test_bot?start="+dlToken || dlToken == "" {
		t.Fatalf("deep link %v", out)
	}
	exp, err := time.Parse(time.RFC3339, out["token_expires_at"].(string))
	if err != nil || time.Until(exp) > 5*time.Minute+time.Second || time.Until(exp) < 4*time.Minute {
		t.Fatalf("token_expires_at %v (deep_link_ttl=5m from the environment): %v", out["token_expires_at"], err)
	}
	if png, err := base64.StdEncoding.DecodeString(out["qr_png"].(string)); err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("qr_png is not a PNG: %v", err)
	}
	if code, _ := in.call("POST", "/v1/deep-links", key, map[string]any{"user_id": "u", "channel": "nope"}); code != 404 {
		t.Fatalf("unknown channel: %d", code)
	}

	tg.UserSends(4242, "/start "+dlToken, "en")
	sent, err := tg.WaitSent(ctx, 1)
	if err != nil {
		t.Fatalf("no confirmation question: %v\n%s", err, in.logs())
	}
	ask := sent[0]
	if !strings.Contains(ask.Plain(), "ann@shop.example") || len(ask.Buttons()) != 2 || ask.Buttons()[0].CallbackData == nil {
		t.Fatalf("question %+v", ask)
	}
	if code, _ := in.call("GET", "/v1/links/site-user-9", key, nil); code != 404 {
		t.Fatalf("linked before the confirmation: %d", code)
	}

	tg.UserPresses(4242, ask.MessageID, *ask.Buttons()[0].CallbackData, "en")
	sent, err = tg.WaitSent(ctx, 2)
	if err != nil {
		t.Fatalf("no answer to the press: %v\n%s", err, in.logs())
	}
	if sent[1].Method != "editMessageText" || !strings.Contains(sent[1].Plain(), "linked") {
		t.Fatalf("after confirm %+v", sent[1])
	}
	code, out = in.call("GET", "/v1/links/site-user-9", key, nil)
	if code != 200 || !strings.Contains(toJSON(out), `"channel":"telegram"`) {
		t.Fatalf("link: %d %v", code, out)
	}

	// The link is one-time.
	tg.UserSends(5353, "/start "+dlToken, "en")
	sent, err = tg.WaitSent(ctx, 3)
	if err != nil || !strings.Contains(sent[2].Plain(), "already used") {
		t.Fatalf("reused token: %v %+v", err, sent)
	}
	if code, out := in.call("GET", "/v1/deep-links/"+dlToken+"/qr.png", key, nil); code != 422 || errCode(out) != "token_used" {
		t.Fatalf("QR of a used token: %d %v", code, out)
	}
	in.stop()
	if strings.Contains(in.logs(), dlToken) {
		t.Fatalf("deep-link token in logs:\n%s", in.logs())
	}
}

// TestBinaryMessengerDeepLink: the same over Messenger. A new thread opened
// through m.me/<page>?ref=<token> sends the Get Started postback with the
// ref; the Confirm quick reply links.
func TestBinaryMessengerDeepLink(t *testing.T) {
	fb := fbfake.New(t)
	const pageID, token, secret = "1001", "page-token-xyz", "app-secret-abc"
	fb.AddPage(pageID, token, secret)
	dir := t.TempDir()
	env := baseEnv(dir,
		"PAIRINGD_CHANNELS_0_NAME=fb-shop",
		"PAIRINGD_CHANNELS_0_TYPE=messenger",
		"PAIRINGD_CHANNELS_0_LINK_NOTICES=false", // link notices have their own tests (e2e_botfirst_test.go)
		"PAIRINGD_CHANNELS_0_PAGE_ID="+pageID,
		"PAIRINGD_CHANNELS_0_PAGE_ACCESS_TOKEN="+token,
		"PAIRINGD_CHANNELS_0_APP_ID=42",
		"PAIRINGD_CHANNELS_0_APP_SECRET="+secret,
		"PAIRINGD_CHANNELS_0_VERIFY_TOKEN=verify-me",
		"PAIRINGD_CHANNELS_0_GRAPH_URL="+fb.URL(),
	)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)
	deliver := func(item map[string]any) {
		t.Helper()
		body := fbfake.Body(fbfake.Entry{PageID: pageID, Messaging: []map[string]any{item}})
		req, _ := http.NewRequest(http.MethodPost, in.base+"/webhooks/messenger", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", fbfake.Sign(secret, body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("delivery: %d\n%s", res.StatusCode, in.logs())
		}
	}

	code, out := in.call("POST", "/v1/deep-links", key, map[string]any{"user_id": "fb-user-1", "channel": "fb-shop"})
	dlToken, _ := out["token"].(string)
	if code != 201 || out["url"] != "https://m.me/"+pageID+"?ref="+dlToken {
		t.Fatalf("deep link: %d %v", code, out)
	}
	start := fbfake.Postback("7001", "GET_STARTED")
	start["postback"].(map[string]any)["referral"] = map[string]any{"ref": dlToken, "source": "SHORTLINK", "type": "OPEN_THREAD"}
	deliver(start)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent, err := fb.WaitSent(ctx, 1)
	if err != nil || len(sent[0].QuickReplies) != 2 {
		t.Fatalf("no confirmation question: %v %+v\n%s", err, sent, in.logs())
	}
	deliver(fbfake.QuickReplyEvent("7001", "m.confirm", sent[0].QuickReplies[0].Title, sent[0].QuickReplies[0].Payload))
	if _, err := fb.WaitSent(ctx, 2); err != nil {
		t.Fatalf("no answer to the confirmation: %v\n%s", err, in.logs())
	}
	code, out = in.call("GET", "/v1/links/fb-user-1", key, nil)
	if code != 200 || !strings.Contains(toJSON(out), `"channel":"fb-shop"`) {
		t.Fatalf("link: %d %v", code, out)
	}
	in.stop()
	if strings.Contains(in.logs(), dlToken) {
		t.Fatalf("deep-link token in logs:\n%s", in.logs())
	}
}
