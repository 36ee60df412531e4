package messenger

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Send failures, for callers (the outbox) that classify errors with
// errors.Is. Every error the Graph client returns wraps exactly one of them.
var (
	// ErrBlocked: the person blocked the Page or cannot receive messages
	// (code 551; 200/1545041; 10/2018108). The lead is marked blocked.
	// Permanent.
	ErrBlocked = errors.New("messenger: the person is not receiving messages from this page")
	// ErrOutsideWindow: the person last wrote more than 24 hours ago and
	// the message tag does not cover this message (10/2018278). Permanent.
	ErrOutsideWindow = errors.New("messenger: outside the 24-hour messaging window and not allowed by the message tag")
	// ErrThreadControlled: another app (a human agent's inbox) owns the
	// thread (subcode 2018300). Permanent: we do not talk over a human.
	ErrThreadControlled = errors.New("messenger: thread controlled by another app")
	// ErrRateLimited: codes 4 and 613 (and 32), still failing after the
	// bounded retries. Temporary.
	ErrRateLimited = errors.New("messenger: rate limited by the Graph API")
	// ErrRejected: any other refusal of the request (bad parameter,
	// invalid token, missing permission). Permanent.
	ErrRejected = errors.New("messenger: request rejected by the Graph API")
	// ErrUnavailable: the Graph API could not be reached or failed on its
	// side (network, 5xx, codes 1, 2, 1200). Temporary.
	ErrUnavailable = errors.New("messenger: Graph API unavailable")
)

// IsPermanent tells whether sending again cannot succeed without a change
// on the person's or the operator's side.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrBlocked) || errors.Is(err, ErrOutsideWindow) ||
		errors.Is(err, ErrThreadControlled) || errors.Is(err, ErrRejected)
}

// GraphError is an error answer of the Graph API:
// {"error":{"message","type","code","error_subcode","fbtrace_id"}}.
// Its text never holds a token: known secrets are scrubbed from Meta's
// message.
type GraphError struct {
	HTTPStatus int
	Code       int
	Subcode    int
	Type       string
	Message    string
	TraceID    string
	kind       error
}

func (e *GraphError) Error() string {
	reason := "request failed"
	if e.kind != nil {
		reason = strings.TrimPrefix(e.kind.Error(), "messenger: ")
	}
	return fmt.Sprintf("graph api: %s: %s (http %d, code %d, subcode %d, fbtrace_id %s)", reason, e.Message, e.HTTPStatus, e.Code, e.Subcode, e.TraceID)
}

// Unwrap returns the sentinel the error is classified as.
func (e *GraphError) Unwrap() error { return e.kind }

// classify maps a Graph error to one sentinel.
func classify(status, code, subcode int) error {
	switch {
	case code == 551, code == 200 && subcode == 1545041, code == 10 && subcode == 2018108:
		return ErrBlocked
	case subcode == 2018300:
		return ErrThreadControlled
	case code == 10 && (subcode == 2018278 || subcode == 2018065):
		return ErrOutsideWindow
	case code == 4 || code == 32 || code == 613:
		return ErrRateLimited
	case code == 1 || code == 2 || code == 1200 || status >= 500:
		return ErrUnavailable
	}
	return ErrRejected
}

// transportError is a failed round trip. It keeps only the redacted URL
// and the cause without its URL: net/http's *url.Error prints the whole
// URL, access_token included.
type transportError struct {
	op    string
	url   string
	cause error
}

func newTransportError(op, rawURL string, err error) *transportError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &transportError{op: op, url: redactURL(rawURL), cause: err}
}

func (e *transportError) Error() string {
	return fmt.Sprintf("graph api: %s %s: %v", e.op, e.url, e.cause)
}

// Unwrap returns ErrUnavailable and the cause, so errors.Is still finds
// context.DeadlineExceeded.
func (e *transportError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// secretParams are the query parameters whose values never leave this
// package.
var secretParams = []string{"access_token", "appsecret_proof", "account_linking_token", "authorization_code"}

// redactURL hides secret query values of a URL for logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable url]"
	}
	q := u.Query()
	changed := false
	for _, p := range secretParams {
		if q.Has(p) {
			q.Set(p, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// scrub removes known secret values from text taken from elsewhere.
func scrub(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= 6 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}
