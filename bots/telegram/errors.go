package telegram

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Bot API failures, for callers (the outbox) that classify errors with
// errors.Is. Every error of a Bot API call wraps exactly one of them.
var (
	// ErrBlocked: 403, the person blocked the bot (or the chat is gone).
	// The lead is marked blocked. Permanent until the person writes again.
	ErrBlocked = errors.New("telegram: the person blocked the bot")
	// ErrRateLimited: 429, still refused after the bounded retries.
	// Temporary; APIError.RetryAfter says when to try again.
	ErrRateLimited = errors.New("telegram: rate limited by the Bot API")
	// ErrTokenRefused: 401 or 404, the Bot API does not know the token.
	// Permanent until the operator fixes the channel's token.
	ErrTokenRefused = errors.New("telegram: the Bot API refused the bot token (check the channel's token)")
	// ErrConflict: 409, another process polls this bot, or a webhook is
	// set while polling. Temporary.
	ErrConflict = errors.New("telegram: another process takes this bot's updates (409 Conflict)")
	// ErrRejected: any other refusal (400: bad text, unknown chat ...).
	// Permanent.
	ErrRejected = errors.New("telegram: request rejected by the Bot API")
	// ErrUnavailable: the Bot API could not be reached, timed out, failed
	// on its side (5xx) or answered something that is not the Bot API.
	// Temporary.
	ErrUnavailable = errors.New("telegram: Bot API unreachable or failing")
)

// IsPermanent tells whether sending again cannot succeed without a change
// on the person's or the operator's side.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrBlocked) || errors.Is(err, ErrRejected) || errors.Is(err, ErrTokenRefused)
}

// APIError is a failed Bot API call. Its text never holds the token.
type APIError struct {
	// Method is the Bot API method ("sendMessage").
	Method string
	// Code is Telegram's error_code (the HTTP status); 0 when the call
	// failed before an answer (network, timeout).
	Code int
	// Description is Telegram's description, or the transport failure.
	Description string
	// RetryAfter is parameters.retry_after of a 429.
	RetryAfter time.Duration

	kind  error
	cause error // context.Canceled or DeadlineExceeded, else nil
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("telegram %s: %s", e.Method, e.Description)
	if e.Code != 0 {
		msg = fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
	}
	if e.kind == ErrTokenRefused {
		msg += " (" + strings.TrimPrefix(ErrTokenRefused.Error(), "telegram: ") + ")"
	}
	return msg
}

// Unwrap returns the sentinel the error is classified as, and the context
// error when the call was cancelled or timed out.
func (e *APIError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// classify maps an error_code to one sentinel.
func classify(code int) error {
	switch {
	case code == 403:
		return ErrBlocked
	case code == 429:
		return ErrRateLimited
	case code == 401 || code == 404:
		return ErrTokenRefused
	case code == 409:
		return ErrConflict
	case code >= 500 || code == 0:
		return ErrUnavailable
	}
	return ErrRejected
}

// retryAfterOf returns the retry_after of a 429, zero otherwise.
func retryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) && errors.Is(ae.kind, ErrRateLimited) {
		return ae.RetryAfter
	}
	return 0
}

// contextCause keeps only what callers need of a transport failure: that
// the context ended. Anything else may quote the request URL.
func contextCause(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// --- redaction ---

// tokenLike matches anything shaped like a bot token, in case a token
// this process does not know (an operator's typo) reaches a message.
var tokenLike = regexp.MustCompile(`[0-9]{5,20}:[A-Za-z0-9_-]{30,}`)

// redacted is what a token is replaced with.
const redacted = "<redacted>"

// tokens are the bot tokens of every Bot built in this process, for the
// SDK logger, which is global.
var tokens sync.Map // string -> struct{}

// redact removes token, every known bot token and anything token-shaped
// from s.
func redact(s, token string) string {
	s = redactToken(s, token)
	tokens.Range(func(k, _ any) bool {
		s = redactToken(s, k.(string))
		return true
	})
	return tokenLike.ReplaceAllString(s, redacted)
}

// redactToken replaces the token, then its secret part (after the colon)
// on its own, which is what an escaped or cut URL could still show.
func redactToken(s, token string) string {
	if token == "" {
		return s
	}
	s = strings.ReplaceAll(s, token, redacted)
	if _, secret, ok := strings.Cut(token, ":"); ok && len(secret) >= 8 {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}
