package tgfake

import (
	"net/url"
	"testing"
	"time"
)

func TestFloodLimits(t *testing.T) {
	s := New(t, tok)
	s.EnforceRateLimits(RateLimits{PerChat: 1, PerBot: 3, Window: time.Second})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.mu.Lock()
	s.limits.now = func() time.Time { return now }
	s.mu.Unlock()
	send := func(chat string) (int, map[string]any) {
		return raw(t, s, tok, "sendMessage", url.Values{"chat_id": {chat}, "text": {"hi"}})
	}
	if code, _ := send("1"); code != 200 {
		t.Fatalf("first send: %d", code)
	}
	now = now.Add(400 * time.Millisecond)
	code, out := send("1") // the same chat within the second
	params, _ := out["parameters"].(map[string]any)
	if code != 429 || out["description"] != "Too Many Requests: retry after 1" || params["retry_after"] != float64(1) {
		t.Fatalf("per-chat limit: %d %v", code, out)
	}
	for _, chat := range []string{"2", "3"} {
		if code, _ := send(chat); code != 200 {
			t.Fatalf("chat %s: %d", chat, code)
		}
	}
	if code, _ := send("4"); code != 429 { // the fourth message of the bot within the second
		t.Fatalf("per-bot limit: %d", code)
	}
	// A refused message is not delivered and does not count.
	if n := len(s.Sent()); n != 3 || s.TooManyRequests() != 2 {
		t.Fatalf("sent %d, refused %d", n, s.TooManyRequests())
	}
	now = now.Add(601 * time.Millisecond) // the first send leaves the window
	if code, _ := send("1"); code != 200 {
		t.Fatalf("after the window: %d", code)
	}
	s.EnforceRateLimits(RateLimits{})
	for range 5 {
		if code, _ := send("1"); code != 200 {
			t.Fatal("limits still on")
		}
	}
}
