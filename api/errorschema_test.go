package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/api/errorshape"
	"github.com/pairingd/pairingd/pairing"
)

// errorSchema is the Error schema of openapi.yaml.
func errorSchema(t *testing.T) *openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := doc.Components.Schemas["Error"]
	if !ok || ref.Value == nil {
		t.Fatal("no Error schema")
	}
	return ref.Value
}

// validateErrorBody checks one answer's body against the Error schema
// (which allows no key beyond the documented ones) and returns its code.
func validateErrorBody(t *testing.T, schema *openapi3.Schema, name string, body []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %q", name, body)
	}
	if err := schema.VisitJSON(v); err != nil {
		t.Fatalf("%s: %s does not match the Error schema: %v", name, body, err)
	}
	return v.(map[string]any)["error"].(map[string]any)["code"].(string)
}

// TestEveryErrorAnswerMatchesSchema writes every error answer the API can
// give through the one error handler (each row of the domain table, with
// the typed extras it can carry; Echo's own statuses; the API's own
// refusals; an internal error) and every code the webhooks answer with,
// and validates each body against the Error schema of openapi.yaml.
func TestEveryErrorAnswerMatchesSchema(t *testing.T) {
	schema := errorSchema(t)
	e := newEnv(t)
	h, err := New(Config{}, Deps{Service: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(name string, err error) (int, []byte) {
		rec := httptest.NewRecorder()
		c := h.NewContext(httptest.NewRequest(http.MethodPost, "/v1/authorize", nil), rec)
		c.Set(echo.HeaderXRequestID, "req-1")
		h.HTTPErrorHandler(err, c)
		if rec.Header().Get(echo.HeaderContentType) != echo.MIMEApplicationJSON {
			t.Fatalf("%s: Content-Type %q", name, rec.Header().Get(echo.HeaderContentType))
		}
		return rec.Code, rec.Body.Bytes()
	}

	cases := map[string]error{}
	for _, row := range errorTable {
		cases[row.code+" plain"] = fmt.Errorf("wrapped: %w", row.err)
		cases[row.code+" as channel error"] = &pairing.ChannelError{Err: row.err, Channel: "telegram", Cause: errors.New("bot blocked")}
		cases[row.code+" with retry"] = &pairing.RetryError{Err: row.err, RetryAfter: 3 * time.Second}
		cases[row.code+" with attempts"] = &pairing.AttemptsError{Err: row.err, AttemptsLeft: 2, LockedUntil: time.Now().Add(time.Minute)}
	}
	cases["conflict"] = &pairing.ConflictError{Conflict: pairing.Conflict{Kind: pairing.ConflictBotLinkedElsewhere, UserID: "u1", LinkedUserID: "u2"}}
	cases["field"] = fmt.Errorf("%w: %w", pairing.ErrInvalid, &pairing.FieldError{Field: "user_id", Reason: "must not be empty"})
	for status := range httpStatusErrors {
		cases[fmt.Sprint("echo ", status)] = echo.NewHTTPError(status)
	}
	for _, ae := range []*apiError{errBodyRequired, errNotJSON, errQueryKey, errMediaType, errTooLarge, errNoMessenger, errNoSignIn, fieldsError(map[string]string{"pin": "required"})} {
		cases["api "+ae.message] = ae
	}
	cases["internal"] = errors.New("disk on fire")
	cases["timeout"] = context.DeadlineExceeded
	cases["max bytes"] = &http.MaxBytesError{Limit: 10}

	codes := map[string]bool{}
	for name, err := range cases {
		status, body := answer(name, err)
		if status < 400 {
			t.Fatalf("%s: status %d", name, status)
		}
		codes[validateErrorBody(t, schema, name, body)] = true
	}
	// The channel errors carry the channel's name inside the error object.
	for _, code := range []string{"channel_unavailable", "channel_error"} {
		var ce error
		for _, row := range errorTable {
			if row.code == code {
				ce = &pairing.ChannelError{Err: row.err, Channel: "fb-shop"}
			}
		}
		_, body := answer(code, ce)
		var b map[string]map[string]any
		_ = json.Unmarshal(body, &b)
		if len(b) != 1 || b["error"]["channel"] != "fb-shop" || b["error"]["code"] != code {
			t.Fatalf("%s: %s", code, body)
		}
	}

	// The webhooks' answers, written outside Echo.
	for _, c := range []struct {
		status int
		code   string
	}{
		{400, errorshape.InvalidRequest}, {401, errorshape.Unauthorized}, {403, errorshape.Forbidden},
		{404, errorshape.NotFound}, {405, errorshape.MethodNotAllowed}, {413, errorshape.PayloadTooLarge},
		{500, errorshape.Internal},
	} {
		rec := httptest.NewRecorder()
		rec.Header().Set(echo.HeaderXRequestID, "req-2")
		errorshape.Write(rec, c.status, c.code, "why")
		if got := validateErrorBody(t, schema, "webhook "+c.code, rec.Body.Bytes()); got != c.code || rec.Code != c.status {
			t.Fatalf("webhook %s: %d %s", c.code, rec.Code, rec.Body)
		}
		codes[c.code] = true
	}
	for _, want := range []string{"channel_unavailable", "channel_error", "conflict", "pin_invalid", "internal", "forbidden", "not_found", "method_not_allowed"} {
		if !codes[want] {
			t.Errorf("code %s never produced", want)
		}
	}

	// The schema is closed: a key outside the documented object fails.
	if err := schema.VisitJSON(map[string]any{"error": map[string]any{"code": "channel_error", "message": "m"}, "channel": "x"}); err == nil {
		t.Fatal("a key beside error passes the schema")
	}
	if err := schema.VisitJSON(map[string]any{"error": map[string]any{"code": "channel_error", "message": "m", "platform": "x"}}); err == nil {
		t.Fatal("an undocumented key inside error passes the schema")
	}
}
