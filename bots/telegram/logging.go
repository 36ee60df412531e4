package telegram

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// redactHandler removes the bot token from every log message and
// attribute before the record reaches the real handler: the last line of
// defence behind the error wrapping in api.go.
type redactHandler struct {
	inner slog.Handler
	token string
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redact(r.Message, h.token), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return redactHandler{inner: h.inner.WithAttrs(h.attrs(attrs)), token: h.token}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{inner: h.inner.WithGroup(name), token: h.token}
}

func (h redactHandler) attrs(as []slog.Attr) []slog.Attr {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return clean
}

func (h redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact(v.String(), h.token))
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(h.attrs(v.Group())...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redact(x.Error(), h.token))
		case fmt.Stringer:
			return slog.String(a.Key, redact(x.String(), h.token))
		}
		s := fmt.Sprint(v.Any())
		if r := redact(s, h.token); r != s {
			return slog.String(a.Key, r)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// sdkLogger receives what tgbotapi logs (transport retries, and requests
// with their parameters in debug mode, which this package never turns
// on) and passes it on without any token.
type sdkLogger struct{}

var (
	sdkLog     atomic.Pointer[slog.Logger]
	sdkLogOnce sync.Once
)

func (sdkLogger) Println(v ...any)               { logSDK(fmt.Sprintln(v...)) }
func (sdkLogger) Printf(format string, v ...any) { logSDK(fmt.Sprintf(format, v...)) }

func logSDK(s string) {
	if l := sdkLog.Load(); l != nil {
		l.Warn("tgbotapi: " + strings.TrimSpace(redact(s, "")))
	}
}

// installSDKLogger replaces tgbotapi's global logger (stderr, tokens and
// all) with sdkLogger, once per process, and makes log its destination.
func installSDKLogger(log *slog.Logger) {
	sdkLog.Store(log)
	sdkLogOnce.Do(func() { _ = tgbotapi.SetLogger(sdkLogger{}) })
}
