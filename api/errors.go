package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// apiError is an answer the API decided itself (bad body, missing
// route...). Domain errors come from pairing and are mapped by errorTable.
type apiError struct {
	status  int
	code    string
	message string
	fields  map[string]string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalidRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", message: msg}
}

func fieldsError(fields map[string]string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request",
		message: "Some fields are invalid; see fields.", fields: fields}
}

var (
	errBodyRequired = invalidRequest("A JSON object is required as the request body.")
	errNotJSON      = invalidRequest("The request body is not valid JSON.")
	errQueryKey     = invalidRequest("API keys are accepted only in the Authorization header " +
		"(Authorization: Bearer <key>), never in the query string. Revoke a key that was sent in a URL.")
	errMediaType = &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		message: "Send the body as JSON with Content-Type: application/json."}
	errTooLarge = &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		message: "The request body is larger than this server accepts."}
	errNoMessenger = &apiError{status: http.StatusNotFound, code: "not_found",
		message: "messenger channel not configured"}
	errNoSignIn = &apiError{status: http.StatusNotFound, code: "not_found",
		message: "OpenID Connect sign-in is not enabled"}
)

// errorTable maps every domain error to its status, stable code and a
// message for the website's developer. Order matters only where one error
// wraps another. No message contains request data.
var errorTable = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{pairing.ErrBUIDUnknown, 404, "buid_unknown", "The BUID is unknown, malformed or was replaced by a newer one; the person should ask the bot for a new link."},
	{pairing.ErrPINInvalid, 422, "pin_invalid", "The PIN is wrong; attempts_left says how many tries remain before the PIN is locked."},
	{pairing.ErrPINLocked, 423, "pin_locked", "Too many wrong PINs; wait retry_after seconds, then the person may ask the bot for a new PIN."},
	{pairing.ErrPINExpired, 422, "pin_expired", "The PIN has expired; the person should ask the bot for a new one."},
	{pairing.ErrPINUsed, 422, "pin_used", "The PIN was already used; the person should ask the bot for a new one."},
	{pairing.ErrRateLimited, 429, "rate_limited", "Too many requests; wait retry_after seconds before trying again."},
	{pairing.ErrGrantUnknown, 404, "grant_unknown", "The grant is unknown; use the grant returned by POST /v1/authorize."},
	{pairing.ErrGrantExpired, 422, "grant_expired", "The grant has expired; the person must pair again with a new PIN."},
	{pairing.ErrGrantUsed, 422, "grant_used", "The grant was already spent."},
	{pairing.ErrGrantMismatch, 422, "grant_mismatch", "This conflict grant was issued for another user_id."},
	{pairing.ErrConflict, 409, "conflict", "The link conflicts with an existing one; ask the person, then retry with replace: true."},
	{pairing.ErrNotLinked, 404, "not_linked", "No person is linked to this user."},
	{pairing.ErrNotFound, 404, "not_found", "Not found."},
	{pairing.ErrChannelUnavailable, 409, "channel_unavailable", "The person's messenger channel cannot be used to send: it is not configured here or the person blocked the bot."},
	{pairing.ErrChannelFailed, 502, "channel_error", "The messenger platform did not accept the message; try again later."},
	{pairing.ErrTokenUnknown, 404, "token_unknown", "The token is unknown."},
	{pairing.ErrTokenExpired, 422, "token_expired", "The token has expired; start again."},
	{pairing.ErrTokenUsed, 422, "token_used", "The token was already used."},
	{pairing.ErrChannelUnknown, 404, "channel_unknown", "No channel of that name is configured; use a channel name from the service's configuration."},
	{pairing.ErrIdempotencyReused, 422, "idempotency_key_reused", "This Idempotency-Key was used within 24 hours for a different request; use a new key for a new message."},
	{pairing.ErrUnauthorized, 401, "unauthorized", "A valid API key is required: Authorization: Bearer <key>."},
	{pairing.ErrUnavailable, 503, "unavailable", "The service cannot reach its database right now; retry later."},
	{pairing.ErrInvalid, 400, "invalid_request", "The request is invalid."},
}

// httpStatusErrors names the answers Echo itself gives (router, ...).
var httpStatusErrors = map[int]struct{ code, message string }{
	http.StatusBadRequest:            {"invalid_request", "The request is invalid."},
	http.StatusUnauthorized:          {"unauthorized", "A valid API key is required: Authorization: Bearer <key>."},
	http.StatusNotFound:              {"not_found", "No such route; see /openapi.yaml."},
	http.StatusMethodNotAllowed:      {"method_not_allowed", "This route does not take this method; see the Allow header."},
	http.StatusRequestEntityTooLarge: {"payload_too_large", "The request body is larger than this server accepts."},
	http.StatusUnsupportedMediaType:  {"unsupported_media_type", "Send the body as JSON with Content-Type: application/json."},
	http.StatusTooManyRequests:       {"rate_limited", "Too many requests; try again later."},
	http.StatusServiceUnavailable:    {"unavailable", "The service is unavailable; retry later."},
}

// errorBody is the one error shape: {"error": {...}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code         string            `json:"code"`
	Message      string            `json:"message"`
	Fields       map[string]string `json:"fields,omitempty"`
	AttemptsLeft *int              `json:"attempts_left,omitempty"`
	RetryAfter   int64             `json:"retry_after,omitempty"`
	Conflict     *conflictJSON     `json:"conflict,omitempty"`
	Channel      string            `json:"channel,omitempty"`
	// RequestID is the request's X-Request-Id, for a report to the
	// service's operators: it finds the request's lines in their log.
	RequestID string `json:"request_id,omitempty"`
}

// describe turns any error into its status and body. internal reports an
// error the client must not see the detail of.
func describe(err error, now time.Time) (status int, d errorDetail, internal bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, errorDetail{Code: ae.code, Message: ae.message, Fields: ae.fields}, false
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if m, ok := httpStatusErrors[he.Code]; ok {
			return he.Code, errorDetail{Code: m.code, Message: m.message}, false
		}
		return http.StatusInternalServerError, internalDetail, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge.status, errorDetail{Code: errTooLarge.code, Message: errTooLarge.message}, false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, errorDetail{Code: "unavailable", Message: "The request timed out; retry later."}, true
	}
	for _, row := range errorTable {
		if !errors.Is(err, row.err) {
			continue
		}
		d = errorDetail{Code: row.code, Message: row.message}
		addDetail(&d, err, now)
		return row.status, d, false
	}
	return http.StatusInternalServerError, internalDetail, true
}

var internalDetail = errorDetail{Code: "internal", Message: "Something went wrong on our side; it has been logged. Retry later."}

// addDetail copies the typed extras of a domain error into the answer.
func addDetail(d *errorDetail, err error, now time.Time) {
	var fe *pairing.FieldError
	if errors.As(err, &fe) {
		d.Message = "Some fields are invalid; see fields."
		d.Fields = map[string]string{fe.Field: fe.Reason}
	}
	var ae *pairing.AttemptsError
	if errors.As(err, &ae) {
		if errors.Is(err, pairing.ErrPINInvalid) {
			left := ae.AttemptsLeft
			d.AttemptsLeft = &left
		}
		if !ae.LockedUntil.IsZero() && errors.Is(err, pairing.ErrPINLocked) {
			d.RetryAfter = seconds(ae.LockedUntil.Sub(now))
		}
	}
	var re *pairing.RetryError
	if errors.As(err, &re) {
		d.RetryAfter = seconds(re.RetryAfter)
	}
	if (d.Code == "pin_locked" || d.Code == "rate_limited") && d.RetryAfter == 0 {
		d.RetryAfter = 1
	}
	var ce *pairing.ConflictError
	if errors.As(err, &ce) {
		d.Conflict = conflictOf(&ce.Conflict)
	}
	var che *pairing.ChannelError
	if errors.As(err, &che) {
		d.Channel = che.Channel
	}
}

// seconds rounds up, so a client that waits retry_after is not early.
func seconds(d time.Duration) int64 {
	return max(int64(math.Ceil(d.Seconds())), 1)
}

// handleError is Echo's HTTPErrorHandler: every error answer is written
// here, in the one shape. Internal detail (and a channel's cause) goes to
// the log only.
func (s *server) handleError(err error, c echo.Context) {
	status, d, internal := describe(err, s.clock.Now())
	route := s.routeLabel(c)
	log := s.requestLogger(c)
	var che *pairing.ChannelError
	switch {
	case internal && !errors.Is(err, errPanic): // a panic was logged with its stack
		log.Error("request failed", "route", route, "err", err)
	case errors.As(err, &che) && che.Cause != nil:
		log.Warn("channel failed", "route", route, "channel", che.Channel, "err", che.Cause)
	}
	if c.Response().Committed {
		return
	}
	h := c.Response().Header()
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(d.RetryAfter, 10))
	}
	if status == http.StatusUnauthorized {
		h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="pairingd"`)
	}
	d.RequestID, _ = c.Get(echo.HeaderXRequestID).(string)
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, errorBody{Error: d})
	}
	if err != nil {
		log.Debug("writing error answer", "route", route, "err", err)
	}
}
