package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

const ctxKeyID = "pairingd.key_id"

// requestLog gives the request its id and a logger that carries it (see
// requestLogger), then writes one line per request: method, route pattern
// (never the raw URL, which may carry a user id or a misplaced key),
// status, latency and client IP. Bodies, query strings and headers are
// never logged. It also counts the request for /metrics.
func (s *server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := requestID(c.Request().Header.Get(echo.HeaderXRequestID))
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		// The id, not a logger carrying it: building a logger with an
		// attribute costs more than most requests' own logging (none).
		c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), ctxRequestID{}, id)))
		c.Set(echo.HeaderXRequestID, id)
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := s.routeLabel(c)
		status := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.request(c.Request().Method, route, status, elapsed)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		ctx := c.Request().Context()
		if !s.log.Enabled(ctx, level) {
			return nil
		}
		s.log.LogAttrs(ctx, level, "request",
			slog.String("request_id", id),
			slog.String("method", c.Request().Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("latency_ms", math.Round(elapsed.Seconds()*1e6)/1e3),
			slog.String("ip", c.RealIP()),
		)
		return nil
	}
}

// maxRequestIDLen bounds a request id taken from the client, so that it
// cannot fill the log.
const maxRequestIDLen = 128

// requestID is the client's X-Request-Id when it is a sane token (1 to
// 128 visible ASCII characters: nothing that could forge a log line),
// else a new random one, so that a proxy's id follows the request
// through our log.
func requestID(given string) string {
	ok := given != "" && len(given) <= maxRequestIDLen
	for i := 0; ok && i < len(given); i++ {
		ok = given[i] > ' ' && given[i] < 0x7f
	}
	if ok {
		return given
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// ctxRequestID keys the request's id in its context.
type ctxRequestID struct{}

// requestLogger is the logger of the request: every line it writes
// carries the request id. Outside requestLog it is the server's.
func (s *server) requestLogger(c echo.Context) *slog.Logger {
	if id, ok := c.Request().Context().Value(ctxRequestID{}).(string); ok {
		return s.log.With("request_id", id)
	}
	return s.log
}

// routeLabel is the matched route pattern, or "unmatched" for 404s and
// 405s, so labels stay few and never echo the request path.
func (s *server) routeLabel(c echo.Context) string {
	if s.routes[c.Request().Method+" "+c.Path()] {
		return c.Path()
	}
	return "unmatched"
}

// recoverPanic turns a panic into a 500 with the usual JSON and logs the
// stack; a panic is a bug, never the client's fault.
func (s *server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			buf := make([]byte, 8<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.requestLogger(c).Error("panic in handler", "route", s.routeLabel(c), "panic", fmt.Sprint(r), "stack", string(buf))
			s.metrics.recordPanic()
			err = errPanic
		}()
		return next(c)
	}
}

var errPanic = errors.New("handler panicked")

// secureHeaders: answers may hold grants, so nothing is cached, and
// nothing is sniffed.
func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

// queryKeyNames are query parameters that would carry a credential.
var queryKeyNames = []string{"api_key", "apikey", "access_token", "key", "token"}

// refuseQueryKeys refuses a key in the URL: URLs end up in proxy logs and
// browser history, so such a key must not work even once.
func (s *server) refuseQueryKeys(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawQuery == "" {
			return next(c)
		}
		for name := range c.Request().URL.Query() {
			for _, k := range queryKeyNames {
				if strings.EqualFold(name, k) {
					return errQueryKey
				}
			}
		}
		return next(c)
	}
}

// requireKey authenticates the bearer key (through the key cache, so a
// key in use costs no database lookup per request). A client IP past its
// budget of 401s is refused before its key is even looked at.
func (s *server) requireKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ip := c.RealIP()
		if wait := s.authFailures.wait(ip); wait > 0 {
			return &pairing.RetryError{Err: pairing.ErrRateLimited, RetryAfter: wait}
		}
		token, ok := bearerToken(c.Request().Header)
		if !ok {
			s.authFailures.take(ip)
			return pairing.ErrUnauthorized
		}
		key, err := s.keys.authenticate(c.Request().Context(), token, s.svc.Authenticate)
		if errors.Is(err, pairing.ErrUnauthorized) {
			s.authFailures.take(ip)
			return pairing.ErrUnauthorized
		}
		if err != nil {
			return err
		}
		c.Set(ctxKeyID, key.ID)
		return next(c)
	}
}

// bearerToken reads the one Authorization header's bearer token. The
// scheme is case-insensitive (RFC 7235).
func bearerToken(h http.Header) (string, bool) {
	vals := h.Values(echo.HeaderAuthorization)
	if len(vals) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func keyID(c echo.Context) int64 {
	id, _ := c.Get(ctxKeyID).(int64)
	return id
}

// limitIP limits each client IP by l: s.public on the webhook routes,
// s.pages on the browser routes (Webhook.Page).
func limitIP(l *ipLimiter) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ok, wait := l.allow(c.RealIP()); !ok {
				return &pairing.RetryError{Err: pairing.ErrRateLimited, RetryAfter: wait}
			}
			return next(c)
		}
	}
}
