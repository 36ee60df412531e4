package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestBadInput sends malformed requests and checks each gets a clear 4xx
// with its code, changes nothing, and that the PIN still works afterwards.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue()
	good := `"buid":"` + p.BUID + `","pin":"` + p.PIN + `"`
	deep := func(n int) string { return `{"buid":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	long := strings.Repeat("u", 10_000)

	cases := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string // "-" for none
		status      int
		code        string
		field       string // expected key in error.fields
		audited     bool   // the service saw it and wrote an audit line
	}{
		{name: "empty body", body: "", status: 400, code: "invalid_request"},
		{name: "empty body without content type", body: "", contentType: "-", status: 400, code: "invalid_request"},
		{name: "white space only", body: "  \n", status: 400, code: "invalid_request"},
		{name: "text/plain", body: "{" + good + "}", contentType: "text/plain", status: 415, code: "unsupported_media_type"},
		{name: "no content type", body: "{" + good + "}", contentType: "-", status: 415, code: "unsupported_media_type"},
		{name: "latin1 charset", body: "{" + good + "}", contentType: "application/json; charset=latin1", status: 415, code: "unsupported_media_type"},
		{name: "form", body: "buid=x&pin=1", contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type"},
		{name: "10 MB body", body: `{"buid":"` + strings.Repeat("a", 10<<20) + `"}`, status: 413, code: "payload_too_large"},
		{name: "not JSON", body: `{"buid":`, status: 400, code: "invalid_request"},
		{name: "array", body: `[]`, status: 400, code: "invalid_request"},
		{name: "string", body: `"x"`, status: 400, code: "invalid_request"},
		{name: "null", body: `null`, status: 400, code: "invalid_request"},
		{name: "nested 33 deep", body: deep(32), status: 400, code: "invalid_request"},
		{name: "nested 10000 deep", body: deep(10000), status: 400, code: "invalid_request"},
		{name: "nested object in value", body: `{` + good + `,"user_id":{"a":1}}`, status: 400, code: "invalid_request", field: "user_id"},
		{name: "duplicate key", body: `{` + good + `,"pin":"000000"}`, status: 400, code: "invalid_request"},
		{name: "duplicate key by escape", body: `{` + good + `,"\u0070in":"000000"}`, status: 400, code: "invalid_request"},
		{name: "duplicate nested key", body: `{` + good + `,"x":{"a":1,"a":2}}`, status: 400, code: "invalid_request"},
		{name: "trailing garbage", body: `{` + good + `} x`, status: 400, code: "invalid_request"},
		{name: "second object", body: `{` + good + `}{}`, status: 400, code: "invalid_request"},
		{name: "invalid UTF-8", body: `{"buid":"` + p.BUID + "\xff" + `","pin":"` + p.PIN + `"}`, status: 400, code: "invalid_request"},
		{name: "unknown field", body: `{` + good + `,"admin":true}`, status: 400, code: "invalid_request", field: "admin"},
		{name: "key in other case", body: `{"BUID":"` + p.BUID + `","pin":"` + p.PIN + `"}`, status: 400, code: "invalid_request", field: "BUID"},
		{name: "pin as number", body: `{"buid":"` + p.BUID + `","pin":123456}`, status: 400, code: "invalid_request", field: "pin"},
		{name: "buid null", body: `{"buid":null,"pin":"` + p.PIN + `"}`, status: 400, code: "invalid_request", field: "buid"},
		{name: "buid missing", body: `{"pin":"` + p.PIN + `"}`, status: 400, code: "invalid_request", field: "buid"},
		{name: "pin empty", body: `{"buid":"` + p.BUID + `","pin":""}`, status: 400, code: "invalid_request", field: "pin"},
		{name: "pin letters", body: `{"buid":"` + p.BUID + `","pin":"12345a"}`, status: 400, code: "invalid_request", field: "pin"},
		{name: "NUL in user_id", body: `{` + good + `,"user_id":"a\u0000b"}`, status: 400, code: "invalid_request", field: "user_id"},
		{name: "CR LF in user_id", body: `{` + good + `,"user_id":"a\r\nSet-Cookie: x"}`, status: 400, code: "invalid_request", field: "user_id"},
		{name: "10 kB user_id", body: `{` + good + `,"user_id":"` + long + `"}`, status: 400, code: "invalid_request", field: "user_id"},
		{name: "user_id empty", body: `{` + good + `,"user_id":""}`, status: 400, code: "invalid_request", field: "user_id"},
		{name: "foreign characters in BUID", body: `{"buid":"бюид` + p.BUID + `","pin":"` + p.PIN + `"}`, status: 404, code: "buid_unknown", audited: true},
		{name: "emoji BUID", body: `{"buid":"🙂","pin":"` + p.PIN + `"}`, status: 404, code: "buid_unknown", audited: true},
		{name: "replace as string", path: "/v1/links", body: `{"grant":"pgr_x","user_id":"u","replace":"yes"}`, status: 400, code: "invalid_request", field: "replace"},
		{name: "links without grant", path: "/v1/links", body: `{"user_id":"u"}`, status: 400, code: "invalid_request", field: "grant"},
		{name: "resend extra field", path: "/v1/pins/resend", body: `{"buid":"x","pin":"1"}`, status: 400, code: "invalid_request", field: "pin"},
		{name: "NUL in path user_id", method: "GET", path: "/v1/links/a%00b", status: 400, code: "invalid_request", field: "user_id"},
		{name: "CR LF in path user_id", method: "DELETE", path: "/v1/links/a%0D%0Ab", status: 400, code: "invalid_request", field: "user_id"},
		{name: "10 kB path user_id", method: "GET", path: "/v1/links/" + long, status: 400, code: "invalid_request", field: "user_id"},
		{name: "unknown /v1 route", method: "GET", path: "/v1/nope", status: 404, code: "not_found"},
		{name: "unknown route", method: "GET", path: "/admin", status: 404, code: "not_found"},
		{name: "wrong method", method: "PUT", path: "/v1/authorize", body: "{" + good + "}", status: 405, code: "method_not_allowed"},
		{name: "GET on POST route", method: "GET", path: "/v1/authorize", status: 405, code: "method_not_allowed"},
		{name: "DELETE on healthz", method: "DELETE", path: "/healthz", status: 405, code: "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/authorize"
			}
			before := e.snap(p)
			req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.key)
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			r := e.send(req)
			expect(t, r, tc.status, tc.code)
			if tc.field != "" {
				if f, _ := r.errField("fields").(map[string]any); f[tc.field] == nil {
					t.Errorf("fields lack %q: %s", tc.field, r.raw)
				}
			}
			if msg, _ := r.errField("message").(string); msg == "" || strings.Contains(msg, p.PIN) || strings.Contains(msg, p.BUID) {
				t.Errorf("message %q", msg)
			}
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			e.unchanged(before, p, tc.audited)
		})
	}
	// None of it touched the PIN.
	expect(t, e.authorize(p, ""), http.StatusOK, "")
}

// A body without Content-Length (chunked) is cut at the limit too.
func TestChunkedBodyOverLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.BodyLimit = 1024 }))
	body := `{"buid":"` + strings.Repeat("a", 2000) + `"}`
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/authorize", io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	expect(t, e.send(req), http.StatusRequestEntityTooLarge, "payload_too_large")
}

// PINs are normalized by the service: NFKC, spaces and '-' dropped.
func TestPINNormalization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, variant := range []func(string) string{
		fullWidth,
		func(s string) string { return s[:3] + " " + s[3:] },
		func(s string) string { return " " + s[:2] + "-" + s[2:4] + "-" + s[4:] + " " },
		func(s string) string { return fullWidth(s[:3]) + "\u3000" + s[3:] }, // ideographic space
	} {
		p := e.issue()
		typed := variant(p.PIN)
		r := e.post("/v1/authorize", map[string]string{"buid": p.BUID, "pin": typed})
		if r.status != http.StatusOK || r.str("outcome") != "register" {
			t.Fatalf("pin %q for %s: %d %s", typed, p.PIN, r.status, r.raw)
		}
	}
}

func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r - '0' + '０')
	}
	if !utf8.ValidString(b.String()) {
		panic("bad")
	}
	return b.String()
}
