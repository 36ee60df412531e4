package telegram

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// okBotAPI answers every Bot API call at once with a body that fits every
// call's answer, so fuzzing exercises the whole handler without sockets.
type okBotAPI struct{}

func (okBotAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(`{"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"}}}`)),
	}, nil
}

// FuzzParseUpdate feeds arbitrary bodies to the update parser and, with
// the right secret, to the whole webhook handler: no panic, a parsed
// update is answered 200 and an unparsable one 400, never 500; what the
// handler reads of an update stays bounded.
func FuzzParseUpdate(f *testing.F) {
	f.Add([]byte(loginUpdate))
	e := newEnv(f, webhookMode("https://pairing.example"), withConfig(func(c *Config) { c.HTTPClient = &http.Client{Transport: okBotAPI{}} }))
	h := e.bot.WebhookHandler()

	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := parseUpdate(body)
		if err == nil {
			if k := u.dedupeKey(); k == "" || len(k) > 20 {
				t.Fatalf("dedupe key %q", k)
			}
			if u.kind == "" || len(u.kind) > 40 {
				t.Fatalf("kind %q", u.kind)
			}
			_ = u.chatID()
			if u.Message != nil && u.Message.From != nil {
				p := profileOf(u.Message.From)
				if len(p.FirstName) > 128 || len(p.Locale) > 16 || !utf8.ValidString(p.FirstName) || strings.ContainsRune(p.FirstName, 0) {
					t.Fatalf("profile %+v", p)
				}
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, webhookRequest(e.bot.secret, body))
		switch {
		case len(body) > maxWebhookBody:
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("large body: %d", rec.Code)
			}
		case err != nil:
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("unparsable body answered %d", rec.Code)
			}
		default:
			if rec.Code != http.StatusOK {
				t.Fatalf("update %s answered %d: %s", u.kind, rec.Code, rec.Body)
			}
		}
	})
}
