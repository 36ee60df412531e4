package messenger

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
)

// okGraph answers every Graph call at once with a body that fits every
// call's answer, so fuzzing exercises the whole handler without sockets.
type okGraph struct{}

func (okGraph) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(`{"data":[],"message_id":"m_1","success":true}`)),
	}, nil
}

// FuzzParseWebhook feeds arbitrary bodies, correctly signed, to the parser
// and to the whole webhook handler: no panic, a parsed body is answered
// 200 and an unparsable one 400, never 500, and dedupe keys stay bounded.
func FuzzParseWebhook(f *testing.F) {
	for _, ex := range docExamples {
		f.Add([]byte(`{"object":"page","entry":[{"id":"111000111","messaging":[` + ex.item + `]}]}`))
	}
	f.Add(fbfake.Delivery(pageA, fbfake.Text("5001", "m.f1", "login"), fbfake.Postback("5001", payloadUnlink)))
	f.Add(fbfake.Body(fbfake.Entry{PageID: pageA, Standby: []map[string]any{fbfake.Text("5001", "m.f2", "help")}}))
	e := newEnv(f, idMatching, func(c *Config) { c.HTTPClient = &http.Client{Transport: okGraph{}} })

	f.Fuzz(func(t *testing.T, body []byte) {
		object, events, err := parseWebhook(body)
		if err == nil {
			for _, ev := range events {
				if k := ev.dedupeKey(); k == "" || len(k) > 512 {
					t.Fatalf("dedupe key %q", k)
				}
				_ = ev.kind()
			}
		}
		rec := httptest.NewRecorder()
		e.hub.WebhookHandler().ServeHTTP(rec, fbfake.SignedRequest(secretA, body))
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
				t.Fatalf("object %q with %d events answered %d: %s", object, len(events), rec.Code, rec.Body)
			}
		}
	})
}
