package telegram

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/templates"
)

// countingTransport counts requests and answers none.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return nil, http.ErrHandlerTimeout
}

func TestNewValidatesWithoutNetwork(t *testing.T) {
	texts, err := templates.Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	deps := channel.Deps[Pairing]{Service: e.svc, Intake: e.worker, Texts: texts}
	rt := &countingTransport{}
	ok := Config{Name: "tg", Token: token, HTTPClient: &http.Client{Transport: rt}}

	b, err := New(ok, deps)
	if err != nil {
		t.Fatal(err)
	}
	if rt.n.Load() != 0 {
		t.Fatal("New called the network")
	}
	if b.Name() != "tg" || b.Mode() != ModePolling || b.cfg.APIEndpoint != tgbotapi.APIEndpoint || b.cfg.PollTimeout != 30*time.Second ||
		b.cfg.StatusDisplay != StatusLinked || b.cfg.FallbackLocale != "en" || b.Health() != nil {
		t.Fatalf("defaults %+v", b.cfg)
	}
	if WebhookPath("tg") != "/webhooks/telegram/tg" {
		t.Fatal(WebhookPath("tg"))
	}

	// A base URL (a local Bot API server) gets the method path added.
	local := ok
	local.APIEndpoint = "http://localhost:8081/"
	if b, err := New(local, deps); err != nil || b.cfg.APIEndpoint != "http://localhost:8081/bot%s/%s" {
		t.Fatalf("local endpoint: %v %q", err, b.cfg.APIEndpoint)
	}
	// A fallback given as a language tag maps to the shipped locale.
	tagged := ok
	tagged.FallbackLocale = "zh-Hant"
	if b, err := New(tagged, deps); err != nil || b.cfg.FallbackLocale != "zh-TW" {
		t.Fatalf("fallback tag: %v", err)
	}

	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"name":             {func(c *Config) { c.Name = "Bad Name" }, "name"},
		"no token":         {func(c *Config) { c.Token = "" }, "token is required"},
		"token shape":      {func(c *Config) { c.Token = token + "/../x" }, "does not look like a bot token"},
		"mode":             {func(c *Config) { c.Mode = "push" }, "mode"},
		"webhook, no url":  {func(c *Config) { c.Mode = ModeWebhook }, "public_url"},
		"webhook, bad url": {func(c *Config) { c.Mode, c.PublicURL = ModeWebhook, "ftp://x" }, "public_url"},
		"endpoint":         {func(c *Config) { c.APIEndpoint = "https://x/bot%s" }, "api_endpoint"},
		"endpoint scheme":  {func(c *Config) { c.APIEndpoint = "file:///bot%s/%s" }, "api_endpoint"},
		"endpoint verbs":   {func(c *Config) { c.APIEndpoint = "https://x/bot%s/%d%s" }, "api_endpoint"},
		"secret":           {func(c *Config) { c.WebhookSecret = "has space" }, "webhook_secret"},
		"poll timeout":     {func(c *Config) { c.PollTimeout = 2 * time.Minute }, "poll_timeout"},
		"client timeout":   {func(c *Config) { c.HTTPClient = &http.Client{Timeout: 10 * time.Second} }, "http client timeout"},
		"status display":   {func(c *Config) { c.StatusDisplay = "email" }, "status_display"},
		"fallback":         {func(c *Config) { c.FallbackLocale = "de" }, "fallback locale"},
	} {
		cfg := ok
		tc.change(&cfg)
		_, err := New(cfg, deps)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), secretPart) {
			t.Errorf("%s: token in %q", name, err)
		}
	}
	if _, err := New(ok, channel.Deps[Pairing]{Intake: e.worker, Texts: texts}); err == nil {
		t.Fatal("nil service accepted")
	}
	if _, err := New(ok, channel.Deps[Pairing]{Service: e.svc, Texts: texts}); err == nil {
		t.Fatal("nil intake accepted")
	}
}

// Every locale has every Telegram text, and each renders to HTML
// Telegram accepts.
func TestTextsCompleteAndValidHTML(t *testing.T) {
	texts, err := templates.Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	telegramKeys := func(loc string) []string {
		var out []string
		for _, k := range texts.Keys(loc) {
			if strings.HasPrefix(k, "telegram_") {
				out = append(out, k)
			}
		}
		return out
	}
	want := telegramKeys("en")
	if len(want) < 20 {
		t.Fatalf("only %d telegram keys", len(want))
	}
	data := map[string]any{"PIN": "123456", "Minutes": 7, "Seconds": 3, "URL": esc("https://x.example/p?a=1&b=2"), "UserID": esc("u<1>"), "Name": esc("Ann <Shop> & Co"), "Site": esc("Shop & Co"), "Code": "AB12"}
	for _, loc := range texts.Locales() {
		got := telegramKeys(loc)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s keys differ:\n got %v\nwant %v", loc, got, want)
		}
		for _, k := range got {
			s := texts.Text(loc, k, data)
			if strings.HasPrefix(s, "[") || strings.TrimSpace(s) == "" {
				t.Errorf("%s/%s does not render: %q", loc, k, s)
			}
			if err := tgfake.CheckHTML(s); err != nil {
				t.Errorf("%s/%s: %v", loc, k, err)
			}
		}
	}
}
