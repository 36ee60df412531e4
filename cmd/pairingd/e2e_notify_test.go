package main

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// TestBinaryNotifySurvivesKill9 queues notifications through the real
// binary's API, kills it with SIGKILL while it is delivering, starts it
// again, and checks that every accepted message reaches the fake Bot API
// (at least once; duplicates are counted and reported: they are the
// deliveries in flight at the kill, resent after their lease).
func TestBinaryNotifySurvivesKill9(t *testing.T) {
	const token = "123456:AAE-kill-test-token-part"
	tg := tgfake.New(t, token)
	dir := t.TempDir()
	env := telegramEnv(dir, tg,
		"PAIRINGD_CHANNELS_0_RATE_PER_SECOND=20",
		"PAIRINGD_CHANNELS_0_PER_CHAT_INTERVAL=50ms",
		"PAIRINGD_JOBS_SEND_TIMEOUT=1s",
		"PAIRINGD_JOBS_POLL_INTERVAL=100ms",
	)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)

	const users, perUser = 8, 25
	for u := 1; u <= users; u++ {
		p := issuePIN(t, dir, env, strconv.Itoa(u))
		code, out := in.call("POST", "/v1/authorize", key, map[string]any{"buid": p.BUID, "pin": p.PIN, "user_id": "user-" + strconv.Itoa(u)})
		if code != 200 || out["outcome"] != "linked" {
			t.Fatalf("link %d: %d %v", u, code, out)
		}
	}
	want := map[string]bool{} // "chat|text" of every accepted message
	var ids []int64
	for round := range perUser {
		for u := 1; u <= users; u++ {
			text := fmt.Sprintf("message %d to user %d", round, u)
			code, out := in.call("POST", "/v1/users/user-"+strconv.Itoa(u)+"/messages", key, map[string]any{"text": text})
			if code != 202 {
				t.Fatalf("notify: %d %v", code, out)
			}
			want[fmt.Sprintf("%d|%s", u, text)] = true
			ids = append(ids, int64(out["id"].(float64)))
		}
	}
	total := users * perUser

	// Kill it in the middle of delivering.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := tg.WaitSent(ctx, total/4); err != nil {
		t.Fatalf("delivery did not start: %v\n%s", err, in.logs())
	}
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	in.cmd.Wait()
	atKill := len(tg.Sent())
	if atKill >= total {
		t.Fatalf("all %d messages were sent before the kill; slow the pacing down", total)
	}
	t.Logf("killed after %d of %d messages", atKill, total)

	in = start(t, dir, env)
	got := map[string]int{}
	deadline := time.Now().Add(90 * time.Second)
	for {
		for k := range got {
			delete(got, k)
		}
		for _, m := range tg.Sent() {
			got[fmt.Sprintf("%d|%s", m.ChatID, m.Text)]++
		}
		missing := 0
		for k := range want {
			if got[k] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted messages never delivered after the restart\n%s", missing, total, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	dups := 0
	for k, n := range got {
		if !want[k] {
			t.Fatalf("unexpected message %q", k)
		}
		dups += n - 1
	}
	t.Logf("all %d accepted messages delivered after kill -9 and restart; %d duplicates (sent before the kill, not yet recorded)", total, dups)
	if dups > 8 { // at most the sends in flight at the kill (notify.parallel)
		t.Fatalf("%d duplicates: more than the sends in flight at the kill", dups)
	}
	// The API agrees: every message delivered.
	for _, id := range ids {
		for {
			code, out := in.call("GET", fmt.Sprintf("/v1/messages/%d", id), key, nil)
			if code != 200 {
				t.Fatalf("get %d: %d %v", id, code, out)
			}
			d := out["deliveries"].([]any)[0].(map[string]any)
			if d["status"] == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d: %v", id, d)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	in.stop()
}
