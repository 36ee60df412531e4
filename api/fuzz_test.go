package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// FuzzDecodeAuthorize runs arbitrary bytes through the whole body path of
// POST /v1/authorize: size and media checks, the strict JSON walk, the
// OpenAPI validator and the typed decode. Nothing may panic, every refusal
// is a 4xx, and what passes is exactly what the handler would read.
func FuzzDecodeAuthorize(f *testing.F) {
	f.Add([]byte(`{"buid":"86Rf07xd4z","pin":"123456","user_id":"42"}`))
	f.Add([]byte(`{"buid":"x","pin":"１２３ ４５６"}`))
	f.Add([]byte(`{"buid":"x","buid":"y"}`))
	f.Add([]byte(`{"buid":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`))
	sp, err := loadSpec()
	if err != nil {
		f.Fatal(err)
	}
	s := &server{cfg: DefaultConfig(), spec: sp}
	e := echo.New()

	f.Fuzz(func(t *testing.T, data []byte) {
		var in authorizeBody
		decodeErr := decodeBody(data, &in)
		if decodeErr == nil {
			if !utf8.Valid(data) || !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(data, &keys); err != nil {
				t.Fatalf("accepted a non-object: %q", data)
			}
			for k := range keys {
				if !jsonFields(&in)[k] {
					t.Fatalf("accepted unknown key %q", k)
				}
			}
			var again authorizeBody
			if err := json.Unmarshal(data, &again); err != nil || again != in {
				t.Fatalf("decoded %+v, encoding/json reads %+v", in, again)
			}
		} else if st, d, internal := describe(decodeErr, t0); internal || st != http.StatusBadRequest || d.Code != "invalid_request" {
			t.Fatalf("decode refusal %d %+v for %q", st, d, data)
		}

		req := httptest.NewRequest(http.MethodPost, "/v1/authorize", bytes.NewReader(data))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		c := e.NewContext(req, httptest.NewRecorder())
		c.SetPath("/v1/authorize")
		passed := false
		err := s.readBody(s.validate(func(c echo.Context) error {
			passed = true
			return decodeBody(body(c), &authorizeBody{})
		}))(c)
		if err != nil {
			if st, d, internal := describe(err, t0); internal || st < 400 || st >= 500 {
				t.Fatalf("refusal %d %+v for %q: %v", st, d, data, err)
			}
		}
		if passed && err != nil {
			t.Fatalf("validator passed what the handler refuses: %q: %v", data, err)
		}
		if passed && decodeErr != nil {
			t.Fatalf("validator passed what decodeBody refuses: %q", data)
		}
	})
}
