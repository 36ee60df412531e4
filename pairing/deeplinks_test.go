package pairing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

// linkChannel is a channel that makes deep links like the real ones, or
// fails like a Telegram bot that has not learnt its username yet.
type linkChannel struct {
	base string
	fail error
}

func (c linkChannel) SendPIN(context.Context, pairing.IssuedPIN) error { return nil }

func (c linkChannel) DeepLinkURL(token string) (string, error) {
	if c.fail != nil {
		return "", c.fail
	}
	return c.base + token, nil
}

// pinOnly is a channel without deep links.
type pinOnly struct{}

func (pinOnly) SendPIN(context.Context, pairing.IssuedPIN) error { return nil }

const tgBase = "https://t.me/shop_bot?start="

func newLinkEnv(t *testing.T, mod ...func(*pairing.Config)) *env {
	t.Helper()
	e := newEnv(t, mod...)
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Links: linkChannel{base: tgBase}})
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "fb-shop", Links: linkChannel{base: "https://m.me/1234?ref="}})
	return e
}

func (e *env) deepLink(channel, userID, name string) pairing.DeepLink {
	e.t.Helper()
	dl, err := e.svc.CreateDeepLink(e.ctx, pairing.DeepLinkRequest{UserID: userID, Channel: channel, DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return dl
}

// chat records that a person wrote to a channel, as a bot does first.
func (e *env) chat(channel, ext string) pairing.LeadKey {
	e.t.Helper()
	k := pairing.LeadKey{Channel: channel, ExternalID: ext}
	if _, err := e.svc.TouchLead(e.ctx, k, pairing.Profile{FirstName: "Ann"}); err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) linkedTo(k pairing.LeadKey) string {
	e.t.Helper()
	st, err := e.svc.Status(e.ctx, k)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.UserID
}

func (e *env) eventsOf(typ string) []map[string]any {
	var out []map[string]any
	for _, ev := range e.store.SiteEvents() {
		if ev.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Payload, &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

var telegramStart = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func TestDeepLinkCreatePreviewConfirm(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	dl := e.deepLink("telegram", "site-user-1", "  Ann <Shop>  ")
	if !telegramStart.MatchString(dl.Token) || len(dl.Token) < 4+22 {
		t.Fatalf("token %q is not a Telegram start parameter of >=128 bits", dl.Token)
	}
	if dl.URL != tgBase+dl.Token || dl.Channel != "telegram" || !dl.ExpiresAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("deep link %+v", dl)
	}
	// Only the hash is stored.
	toks := e.store.LinkTokens()
	if len(toks) != 1 || !bytes.Equal(toks[0].Hash, pairing.HashToken([]byte(dl.Token))) || toks[0].UserID != "site-user-1" {
		t.Fatalf("stored %+v", toks)
	}
	if strings.Contains(string(toks[0].Hash), dl.Token) {
		t.Fatal("token stored in clear")
	}

	k := e.chat("telegram", "42")
	pv, err := e.svc.PreviewDeepLink(e.ctx, k, dl.Token)
	if err != nil || pv.DisplayName != "Ann <Shop>" || !pv.ExpiresAt.Equal(dl.ExpiresAt) {
		t.Fatalf("preview %+v %v", pv, err)
	}
	// The preview spends nothing and links nothing.
	if got := e.linkedTo(k); got != "" {
		t.Fatalf("linked by a preview: %q", got)
	}
	res, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token)
	if err != nil || res.Outcome != pairing.OutcomeLinked || res.UserID != "site-user-1" {
		t.Fatalf("redeem %+v %v", res, err)
	}
	if got := e.linkedTo(k); got != "site-user-1" {
		t.Fatalf("linked to %q", got)
	}
	evs := e.eventsOf(pairing.EventLinkCreated)
	if len(evs) != 1 || evs[0]["user_id"] != "site-user-1" || evs[0]["by"] != "deep_link" || evs[0]["channel"] != "telegram" {
		t.Fatalf("link.created events %v", evs)
	}
	// One time only.
	if _, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token); !errors.Is(err, pairing.ErrTokenUsed) {
		t.Fatalf("second redeem: %v", err)
	}
	if _, err := e.svc.PreviewDeepLink(e.ctx, k, dl.Token); !errors.Is(err, pairing.ErrTokenUsed) {
		t.Fatalf("preview of a used token: %v", err)
	}
	if _, err := e.svc.DeepLinkByToken(e.ctx, dl.Token); !errors.Is(err, pairing.ErrTokenUsed) {
		t.Fatalf("QR of a used token: %v", err)
	}
	if n := len(e.eventsOf(pairing.EventLinkCreated)); n != 1 {
		t.Fatalf("%d link.created events", n)
	}
}

func TestDeepLinkTokenComesFromInjectedRand(t *testing.T) {
	t.Parallel()
	st := newEnv(t).store
	svc, err := pairing.New(st, pairing.Config{Secret: []byte(strings.Repeat("s", 32))},
		pairing.WithRand(bytes.NewReader(bytes.Repeat([]byte{0xfb}, 32))))
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Links: linkChannel{base: tgBase}})
	dl, err := svc.CreateDeepLink(context.Background(), pairing.DeepLinkRequest{UserID: "u", Channel: "telegram"})
	if err != nil {
		t.Fatal(err)
	}
	want := "pdl_" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
	if dl.Token != want {
		t.Fatalf("token %q, want %q (256 bits of the injected rand)", dl.Token, want)
	}
	// The rand is exhausted: the next token fails cleanly rather than
	// being made weak.
	if _, err := svc.CreateDeepLink(context.Background(), pairing.DeepLinkRequest{UserID: "u", Channel: "telegram"}); err == nil {
		t.Fatal("token made without randomness")
	}
}

func TestDeepLinkExpires(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t, func(c *pairing.Config) { c.DeepLinkTTL = 2 * time.Minute })
	dl := e.deepLink("telegram", "u1", "")
	if !dl.ExpiresAt.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("deep_link_ttl not applied: %v", dl.ExpiresAt)
	}
	k := e.chat("telegram", "42")
	if _, err := e.svc.PreviewDeepLink(e.ctx, k, dl.Token); err != nil {
		t.Fatal(err)
	}
	// The person waits too long before pressing confirm.
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token); !errors.Is(err, pairing.ErrTokenExpired) {
		t.Fatalf("redeem after expiry: %v", err)
	}
	if _, err := e.svc.PreviewDeepLink(e.ctx, k, dl.Token); !errors.Is(err, pairing.ErrTokenExpired) {
		t.Fatalf("preview after expiry: %v", err)
	}
	if _, err := e.svc.DeepLinkByToken(e.ctx, dl.Token); !errors.Is(err, pairing.ErrTokenExpired) {
		t.Fatalf("QR after expiry: %v", err)
	}
	if got := e.linkedTo(k); got != "" {
		t.Fatalf("expired token linked %q", got)
	}
}

func TestDeepLinkUnknownTokens(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	k := e.chat("telegram", "42")
	fb := e.deepLink("fb-shop", "u1", "")
	for name, tok := range map[string]string{
		"never issued":      "pdl_" + strings.Repeat("A", 43),
		"no prefix":         strings.Repeat("A", 47),
		"bad characters":    "pdl_abc def",
		"too long":          "pdl_" + strings.Repeat("A", 61),
		"empty":             "",
		"other channel's":   fb.Token,
		"prefix only":       "pdl_",
		"unicode lookalike": "pdl_Ａ",
	} {
		if _, err := e.svc.PreviewDeepLink(e.ctx, k, tok); !errors.Is(err, pairing.ErrTokenUnknown) {
			t.Errorf("%s: preview %v", name, err)
		}
		if _, err := e.svc.RedeemDeepLink(e.ctx, k, tok); !errors.Is(err, pairing.ErrTokenUnknown) {
			t.Errorf("%s: redeem %v", name, err)
		}
	}
	if _, err := e.svc.DeepLinkByToken(e.ctx, "pdl_"+strings.Repeat("B", 43)); !errors.Is(err, pairing.ErrTokenUnknown) {
		t.Fatalf("QR of an unknown token: %v", err)
	}
	// The Messenger token still works on its own channel.
	if res, err := e.svc.RedeemDeepLink(e.ctx, e.chat("fb-shop", "9001"), fb.Token); err != nil || res.Outcome != pairing.OutcomeLinked {
		t.Fatalf("fb token on fb: %+v %v", res, err)
	}
}

func TestDeepLinkSameRulesAsAuthorize(t *testing.T) {
	t.Parallel()
	t.Run("chat linked to another user: conflict, nothing changes, token kept", func(t *testing.T) {
		e := newLinkEnv(t)
		e.link("42", "old-user")
		k := pairing.LeadKey{Channel: "telegram", ExternalID: "42"}
		dl := e.deepLink("telegram", "u1", "")
		_, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token)
		var ce *pairing.ConflictError
		if !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictBotLinkedElsewhere || ce.Conflict.LinkedUserID != "old-user" {
			t.Fatalf("want bot_linked_elsewhere, got %v", err)
		}
		if got := e.linkedTo(k); got != "old-user" {
			t.Fatalf("link changed to %q", got)
		}
		// The token was not spent: after /logout the person can confirm again.
		if _, err := e.svc.UnlinkLead(e.ctx, k, pairing.ActorBot); err != nil {
			t.Fatal(err)
		}
		if res, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token); err != nil || res.Outcome != pairing.OutcomeLinked {
			t.Fatalf("after logout: %+v %v", res, err)
		}
	})
	t.Run("user linked to another chat on the same channel: conflict", func(t *testing.T) {
		e := newLinkEnv(t)
		e.link("43", "u1")
		k := e.chat("telegram", "42")
		dl := e.deepLink("telegram", "u1", "")
		before := len(e.store.SiteEvents())
		_, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token)
		var ce *pairing.ConflictError
		if !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictUserLinkedElsewhere {
			t.Fatalf("want user_linked_elsewhere, got %v", err)
		}
		if e.linkedTo(k) != "" || e.linkedTo(pairing.LeadKey{Channel: "telegram", ExternalID: "43"}) != "u1" {
			t.Fatal("links changed")
		}
		if len(e.store.SiteEvents()) != before {
			t.Fatal("a conflict wrote site events")
		}
	})
	t.Run("already linked to that user", func(t *testing.T) {
		e := newLinkEnv(t)
		e.link("42", "u1")
		k := pairing.LeadKey{Channel: "telegram", ExternalID: "42"}
		dl := e.deepLink("telegram", "u1", "")
		res, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token)
		if err != nil || res.Outcome != pairing.OutcomeAlreadyLinked {
			t.Fatalf("%+v %v", res, err)
		}
		if _, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token); !errors.Is(err, pairing.ErrTokenUsed) {
			t.Fatalf("already_linked did not spend the token: %v", err)
		}
	})
	t.Run("user linked on another channel only: this messenger joins", func(t *testing.T) {
		e := newLinkEnv(t)
		e.linkOn("fb-shop", "9001", "u1")
		k := e.chat("telegram", "42")
		dl := e.deepLink("telegram", "u1", "")
		res, err := e.svc.RedeemDeepLink(e.ctx, k, dl.Token)
		if err != nil || res.Outcome != pairing.OutcomeLinked {
			t.Fatalf("%+v %v", res, err)
		}
		link, err := e.svc.GetLink(e.ctx, "u1")
		if err != nil || len(link.Leads) != 2 {
			t.Fatalf("want one person with both leads: %+v %v", link, err)
		}
	})
}

func TestDeepLinkConcurrentConfirmationsOneWinner(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	dl := e.deepLink("telegram", "u1", "")
	const n = 16
	keys := make([]pairing.LeadKey, n)
	for i := range keys {
		keys[i] = e.chat("telegram", string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = e.svc.RedeemDeepLink(e.ctx, keys[i], dl.Token)
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, pairing.ErrTokenUsed):
			t.Fatalf("loser got %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d confirmations won", wins)
	}
	if n := len(e.eventsOf(pairing.EventLinkCreated)); n != 1 {
		t.Fatalf("%d link.created events", n)
	}
}

func TestCreateDeepLinkRefusals(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "tg-new", Links: linkChannel{fail: errors.New("bot username not known yet")}})
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "pins-only", PINs: pinOnly{}})
	for _, tc := range []struct {
		name string
		req  pairing.DeepLinkRequest
		want error
	}{
		{"no user", pairing.DeepLinkRequest{Channel: "telegram"}, pairing.ErrInvalid},
		{"user with newline", pairing.DeepLinkRequest{UserID: "a\nb", Channel: "telegram"}, pairing.ErrInvalid},
		{"no channel", pairing.DeepLinkRequest{UserID: "u"}, pairing.ErrInvalid},
		{"unknown channel", pairing.DeepLinkRequest{UserID: "u", Channel: "viber"}, pairing.ErrChannelUnknown},
		{"username unknown", pairing.DeepLinkRequest{UserID: "u", Channel: "tg-new"}, pairing.ErrChannelUnavailable},
		{"no deep links", pairing.DeepLinkRequest{UserID: "u", Channel: "pins-only"}, pairing.ErrChannelUnavailable},
		{"long name", pairing.DeepLinkRequest{UserID: "u", Channel: "telegram", DisplayName: strings.Repeat("é", 65)}, pairing.ErrInvalid},
		{"control char", pairing.DeepLinkRequest{UserID: "u", Channel: "telegram", DisplayName: "Ann\x07"}, pairing.ErrInvalid},
		{"line break", pairing.DeepLinkRequest{UserID: "u", Channel: "telegram", DisplayName: "Ann\nBob"}, pairing.ErrInvalid},
		{"bidi override", pairing.DeepLinkRequest{UserID: "u", Channel: "telegram", DisplayName: "Ann\u202eboB"}, pairing.ErrInvalid},
		{"bad utf-8", pairing.DeepLinkRequest{UserID: "u", Channel: "telegram", DisplayName: "Ann\xff"}, pairing.ErrInvalid},
	} {
		_, err := e.svc.CreateDeepLink(e.ctx, tc.req)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", tc.name, tc.want, err)
		}
	}
	if n := len(e.store.LinkTokens()); n != 0 {
		t.Fatalf("refused requests stored %d tokens", n)
	}
	// 64 characters is fine, and so is an emoji sequence.
	dl := e.deepLink("telegram", "u", strings.Repeat("é", 63)+"👍")
	if pv, err := e.svc.PreviewDeepLink(e.ctx, e.chat("telegram", "1"), dl.Token); err != nil || pv.DisplayName != strings.Repeat("é", 63)+"👍" {
		t.Fatalf("%+v %v", pv, err)
	}
}

func TestDeepLinkByTokenRebuildsTheURL(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t)
	dl := e.deepLink("fb-shop", "u1", "")
	got, err := e.svc.DeepLinkByToken(e.ctx, dl.Token)
	if err != nil || got.URL != "https://m.me/1234?ref="+dl.Token || got.Channel != "fb-shop" || !got.ExpiresAt.Equal(dl.ExpiresAt) {
		t.Fatalf("%+v %v", got, err)
	}
}
