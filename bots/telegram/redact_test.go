package telegram

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// secretPart is the token's secret half, which must not leak either.
var secretPart = token[strings.IndexByte(token, ':')+1:]

// failingTransport fails every request the way net/http does: with a
// *url.Error quoting the URL, token and all.
type failingTransport struct{}

func (failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, errors.New("dial tcp: lookup " + r.URL.Host + ": no such host (while fetching " + r.URL.String() + ")")
}

// No token reaches an error, Health or a log line: Telegram refusals, an
// unreachable Bot API, a transport that quotes URLs, the SDK's logger.
func TestTokenNeverInErrorsOrLogs(t *testing.T) {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	check := func(e *env) {
		t.Helper()
		logs := e.logs.String()
		if strings.Contains(logs, token) || strings.Contains(logs, secretPart) {
			t.Fatalf("token in logs:\n%s", logs)
		}
	}

	// Telegram answering with errors, in chats and in SendPIN.
	e := newEnv(t)
	e.run()
	for _, code := range []int{400, 403, 429, 500, 502} {
		e.tg.FailNext("sendMessage", code, 1)
		e.send(5001, "/help", "en")
	}
	pin := pairing.IssuedPIN{PIN: "123456", URL: "https://shop.example/p", ExpiresAt: e.clock.Now().Add(time.Minute), Lead: e.status(5001).Lead}
	for _, code := range []int{400, 401, 403, 404, 500} {
		e.tg.FailNext("sendMessage", code, 1)
		keep(e.bot.SendPIN(e.ctx, pin))
	}
	check(e)

	// The Bot API unreachable: net/http's errors quote the whole URL.
	down := newEnv(t, withConfig(func(c *Config) { c.APIEndpoint = "http://127.0.0.1:1/bot%s/%s" }))
	keep(down.bot.SendPIN(down.ctx, pin))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- down.bot.Run(ctx) }()
	down.wait(func() bool { return down.bot.Health() != nil })
	keep(down.bot.Health())
	cancel()
	<-done
	if !errors.Is(down.bot.Health(), ErrUnavailable) || !strings.Contains(down.logs.String(), "connection refused") {
		t.Fatalf("the unreachable path was not taken: %v", down.bot.Health())
	}
	check(down)

	// A transport whose error quotes the URL.
	quoting := newEnv(t, withConfig(func(c *Config) { c.HTTPClient = &http.Client{Transport: failingTransport{}} }))
	keep(quoting.bot.SendPIN(quoting.ctx, pin))
	_, err := quoting.bot.call(quoting.ctx, "getMe", nil, 0)
	keep(err)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("transport failure: %v", err)
	}
	quoting.bot.log.Error("something failed", "err", errors.New("GET https://api.telegram.org/bot"+token+"/getMe"),
		"url", "https://api.telegram.org/bot"+token+"/x", slog.Group("g", "inner", "x"+secretPart+"y"))
	check(quoting)

	// What the SDK logs goes through the redacting logger.
	sdkLogger{}.Printf("Endpoint: %s", "https://api.telegram.org/bot"+token+"/getMe")
	api := e.bot.sdk(e.ctx)
	api.Debug = true
	if _, err := api.MakeRequest("getMe", nil); err != nil {
		t.Fatal(err)
	}
	// The SDK's logger is global: it writes to the last bot's logger.
	if sdk := quoting.logs.String(); !strings.Contains(sdk, "tgbotapi: Endpoint: getMe") || !strings.Contains(sdk, "tgbotapi: Endpoint: https://api.telegram.org/bot<redacted>/getMe") {
		t.Fatalf("tgbotapi's logger is not ours:\n%s", sdk)
	}
	check(quoting)

	if len(errs) < 8 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for _, err := range errs {
		if s := err.Error(); strings.Contains(s, token) || strings.Contains(s, secretPart) {
			t.Errorf("token in error %q", s)
		}
		var ce *pairing.ChannelError
		if errors.As(err, &ce) && ce.Cause != nil && strings.Contains(ce.Cause.Error(), secretPart) {
			t.Errorf("token in cause %q", ce.Cause)
		}
	}
}

func TestRedact(t *testing.T) {
	s := redact("a "+token+" b "+secretPart+" c 123456:"+strings.Repeat("Z", 35)+" d", token)
	if strings.Contains(s, secretPart) || strings.Contains(s, "ZZZZ") || strings.Count(s, redacted) != 3 {
		t.Fatalf("%q", s)
	}
	if redact("nothing secret: 12:34", token) != "nothing secret: 12:34" {
		t.Fatal("over-redacted")
	}
}

func TestAPIErrorClassification(t *testing.T) {
	for code, want := range map[int]error{
		400: ErrRejected, 401: ErrTokenRefused, 403: ErrBlocked, 404: ErrTokenRefused,
		409: ErrConflict, 429: ErrRateLimited, 500: ErrUnavailable, 502: ErrUnavailable, 0: ErrUnavailable,
	} {
		err := &APIError{Method: "sendMessage", Code: code, kind: classify(code)}
		if !errors.Is(err, want) {
			t.Errorf("%d: %v", code, err)
		}
		if perm := IsPermanent(err); perm != (code == 400 || code == 401 || code == 403 || code == 404) {
			t.Errorf("%d: permanent %v", code, perm)
		}
	}
	err := &APIError{Method: "getUpdates", Description: "context canceled", kind: ErrUnavailable, cause: contextCause(context.Canceled)}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
}
