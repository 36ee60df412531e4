package telegram

import (
	"maps"
	"testing"
	"time"
)

// TestEveryMessageSentIsCounted: every message the bot sends is reported
// once to the observer with its kind and result, whether the bot sent it
// on its own (the /login PIN, answers, an edited question) or the service
// asked for it (a PIN resend, a notification); a button's callback answer
// is not a message.
func TestEveryMessageSentIsCounted(t *testing.T) {
	e := newEnv(t)
	e.run()
	_, buid := pinOf(t, e.reply(5001, "/login", "en"))
	e.reply(5001, "/status", "en")
	if _, err := e.svc.LinkLead(e.ctx, key(5001), "user-1"); err != nil {
		t.Fatal(err)
	}
	ask := e.reply(5001, "/unlink", "en")
	e.tg.UserPresses(5001, ask.MessageID, dataUnlinkNo, "en") // the question is edited
	e.idle()
	e.tg.Block(5002)
	e.send(5002, "/help", "en")
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.ResendPIN(e.ctx, buid); err != nil {
		t.Fatal(err)
	}
	if err := e.bot.Deliver(e.ctx, outbound("5001")); err != nil {
		t.Fatal(err)
	}
	e.tg.FailNext("sendMessage", 429, 7)
	_ = e.bot.Deliver(e.ctx, outbound("5001"))
	e.tg.FailNext("sendMessage", 400, 0)
	_ = e.bot.Deliver(e.ctx, outbound("5001"))
	e.tg.FailNext("sendMessage", 502, 0)
	_ = e.bot.Deliver(e.ctx, outbound("5001"))
	_ = e.bot.Deliver(e.ctx, outbound("5002"))

	want := map[string]int{
		chName + " pin delivered":             2, // /login, the resend
		chName + " reply delivered":           3, // /status, /unlink, the edit after Cancel
		chName + " reply blocked":             1, // /help from a chat that blocked the bot
		chName + " notification delivered":    1,
		chName + " notification rate_limited": 1,
		chName + " notification failed":       1,
		chName + " notification retried":      1,
		chName + " notification blocked":      1,
	}
	got := e.obs.Sends()
	if !maps.Equal(got, want) {
		t.Fatalf("sends counted:\n%v\nwant\n%v", got, want)
	}
	n := 0
	for _, c := range got {
		n += c
	}
	if calls := e.tg.CallCount("sendMessage") + e.tg.CallCount("editMessageText"); calls != n {
		t.Fatalf("%d messages counted, the Bot API got %d sendMessage and editMessageText calls", n, calls)
	}
	if len(e.tg.CallbackAnswers()) != 1 {
		t.Fatalf("callback answers: %d", len(e.tg.CallbackAnswers()))
	}
}
