package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api/webpage/webpagetest"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

// linkChannel makes deep links like a channel does, or fails like a
// Telegram bot whose username is not known yet.
type linkChannel struct {
	base string
	fail bool
}

func (linkChannel) SendPIN(context.Context, pairing.IssuedPIN) error { return nil }

func (c linkChannel) DeepLinkURL(token string) (string, error) {
	if c.fail {
		return "", errors.New("bot username unknown")
	}
	return c.base + token, nil
}

const botBase = "https://t.me/shop_bot?start="

func newDeepLinkEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Links: linkChannel{base: botBase}})
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "fb-shop", Links: linkChannel{base: "https://m.me/1234?ref="}})
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "tg-starting", Links: linkChannel{fail: true}})
	return e
}

// decodeQR reads the text of a QR code PNG, checking it is a sensible
// size first.
func decodeQR(t *testing.T, b []byte) string {
	t.Helper()
	img, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if img.Width < 200 || img.Width > qrSize || img.Width != img.Height {
		t.Fatalf("QR image %dx%d", img.Width, img.Height)
	}
	text, err := webpagetest.ReadQR(b)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

var startParam = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func TestCreateDeepLinkAndQR(t *testing.T) {
	t.Parallel()
	e := newDeepLinkEnv(t)
	r := e.post("/v1/deep-links", map[string]string{"user_id": "site-42", "channel": "telegram", "display_name": "Ann"})
	expect(t, r, http.StatusCreated, "")
	tok := r.str("token")
	if !startParam.MatchString(tok) || r.str("url") != botBase+tok || r.str("channel") != "telegram" {
		t.Fatalf("answer %s", r.raw)
	}
	if got, want := r.str("token_expires_at"), t0.Add(15*time.Minute).Format(time.RFC3339); got != want {
		t.Fatalf("token_expires_at %q, want %q", got, want)
	}
	b, err := base64.StdEncoding.DecodeString(r.str("qr_png"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, b); got != botBase+tok {
		t.Fatalf("qr_png encodes %q", got)
	}

	q := e.do(http.MethodGet, "/v1/deep-links/"+tok+"/qr.png", "")
	if q.status != http.StatusOK || q.header.Get("Content-Type") != "image/png" || q.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("qr.png: %d %v", q.status, q.header)
	}
	if got := decodeQR(t, []byte(q.raw)); got != botBase+tok {
		t.Fatalf("qr.png encodes %q", got)
	}

	// Messenger channels get an m.me link.
	m := e.post("/v1/deep-links", map[string]string{"user_id": "site-42", "channel": "fb-shop"})
	expect(t, m, http.StatusCreated, "")
	if m.str("url") != "https://m.me/1234?ref="+m.str("token") {
		t.Fatalf("messenger link %s", m.raw)
	}

	// Once spent, the QR code is gone.
	k := pairing.LeadKey{Channel: "telegram", ExternalID: "77"}
	if _, err := e.svc.TouchLead(e.ctx, k, pairing.Profile{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RedeemDeepLink(e.ctx, k, tok); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do(http.MethodGet, "/v1/deep-links/"+tok+"/qr.png", ""), 422, "token_used")
	if l := e.do(http.MethodGet, "/v1/links/site-42", ""); l.status != 200 {
		t.Fatalf("link after confirm: %s", l.raw)
	}

	// The audit trail names the key; no log line holds a token.
	keys, err := e.svc.ListAPIKeys(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range e.store.Audit() {
		if a.Action == "deep_link_create" && a.KeyID == keys[0].ID && a.UserID == "site-42" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit of the creation: %+v", e.store.Audit())
	}
	if logs := e.logs.String(); strings.Contains(logs, tok) || strings.Contains(logs, m.str("token")) {
		t.Fatal("a token was logged")
	}
}

func TestDeepLinkRefusals(t *testing.T) {
	t.Parallel()
	e := newDeepLinkEnv(t)
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
		field  string
	}{
		{"no user_id", `{"channel":"telegram"}`, 400, "invalid_request", "user_id"},
		{"no channel", `{"user_id":"u"}`, 400, "invalid_request", "channel"},
		{"empty user_id", `{"user_id":"","channel":"telegram"}`, 400, "invalid_request", "user_id"},
		{"user_id with NUL", `{"user_id":"a\u0000b","channel":"telegram"}`, 400, "invalid_request", "user_id"},
		{"unknown field", `{"user_id":"u","channel":"telegram","replace":true}`, 400, "invalid_request", "replace"},
		{"channel not a string", `{"user_id":"u","channel":7}`, 400, "invalid_request", "channel"},
		{"display name too long", `{"user_id":"u","channel":"telegram","display_name":"` + strings.Repeat("x", 65) + `"}`, 400, "invalid_request", "display_name"},
		{"display name with newline", `{"user_id":"u","channel":"telegram","display_name":"Ann\nBob"}`, 400, "invalid_request", "display_name"},
		{"display name with bidi override", `{"user_id":"u","channel":"telegram","display_name":"Ann\u202e"}`, 400, "invalid_request", "display_name"},
		{"unknown channel", `{"user_id":"u","channel":"viber"}`, 404, "channel_unknown", ""},
		{"bot username unknown", `{"user_id":"u","channel":"tg-starting"}`, 409, "channel_unavailable", ""},
	} {
		r := e.do(http.MethodPost, "/v1/deep-links", tc.body)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s: got %d %q, want %d %q: %s", tc.name, r.status, r.errCode(), tc.status, tc.code, r.raw)
			continue
		}
		if tc.field != "" {
			if f, _ := r.errField("fields").(map[string]any); f[tc.field] == nil {
				t.Errorf("%s: fields do not name %s: %s", tc.name, tc.field, r.raw)
			}
		}
	}
	if n := len(e.store.LinkTokens()); n != 0 {
		t.Fatalf("refused requests stored %d tokens", n)
	}

	// Auth: no key, a key in the query string.
	expect(t, e.do(http.MethodPost, "/v1/deep-links", `{"user_id":"u","channel":"telegram"}`, header{"Authorization", ""}), 401, "unauthorized")
	expect(t, e.do(http.MethodPost, "/v1/deep-links?api_key="+e.key, `{"user_id":"u","channel":"telegram"}`), 400, "invalid_request")

	// The QR route.
	expect(t, e.do(http.MethodGet, "/v1/deep-links/pdl_"+strings.Repeat("A", 43)+"/qr.png", ""), 404, "token_unknown")
	expect(t, e.do(http.MethodGet, "/v1/deep-links/not-a-token/qr.png", ""), 404, "token_unknown")
	expect(t, e.do(http.MethodGet, "/v1/deep-links/"+strings.Repeat("A", 65)+"/qr.png", ""), 400, "invalid_request")
	r := e.post("/v1/deep-links", map[string]string{"user_id": "u", "channel": "telegram"})
	expect(t, r, 201, "")
	expect(t, e.do(http.MethodGet, "/v1/deep-links/"+r.str("token")+"/qr.png", "", header{"Authorization", ""}), 401, "unauthorized")
	expect(t, e.do(http.MethodPost, "/v1/deep-links/"+r.str("token")+"/qr.png", ""), 405, "method_not_allowed")
	e.clock.Advance(15 * time.Minute)
	expect(t, e.do(http.MethodGet, "/v1/deep-links/"+r.str("token")+"/qr.png", ""), 422, "token_expired")
}
