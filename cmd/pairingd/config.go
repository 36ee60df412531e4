package main

import (
	"bytes"
	"errors"
	"fmt"
	oidcapi "github.com/pairingd/pairingd/api/oidc"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pairingd/pairingd/pairing"
)

// Config is the whole configuration. Every key is documented in
// config.example.yaml; each can be overridden by PAIRINGD_<PATH> (the yaml
// path upper-cased and joined by "_", list items by index:
// PAIRINGD_CHANNELS_0_TOKEN), and any key can be read from a file named by
// PAIRINGD_<PATH>_FILE (for secrets).
type Config struct {
	Server    ServerConfig    `yaml:"server"`
	Database  DatabaseConfig  `yaml:"database"`
	Pairing   PairingConfig   `yaml:"pairing"`
	Site      SiteConfig      `yaml:"site"`
	Log       LogConfig       `yaml:"log"`
	Templates TemplatesConfig `yaml:"templates"`
	Channels  []ChannelConfig `yaml:"channels"`
	Inbound   InboundConfig   `yaml:"inbound"`
	Notify    NotifyConfig    `yaml:"notify"`
	Audit     AuditConfig     `yaml:"audit"`
	OIDC      oidcapi.Config  `yaml:"oidc"`
}

// ServerConfig is the HTTP server.
type ServerConfig struct {
	Listen              string        `yaml:"listen"`
	PublicURL           string        `yaml:"public_url"`
	Secret              string        `yaml:"secret"`
	TrustedProxies      []string      `yaml:"trusted_proxies"`
	BodyLimit           int64         `yaml:"body_limit"`
	ReadHeaderTimeout   time.Duration `yaml:"read_header_timeout"`
	ReadTimeout         time.Duration `yaml:"read_timeout"`
	WriteTimeout        time.Duration `yaml:"write_timeout"`
	IdleTimeout         time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout     time.Duration `yaml:"shutdown_timeout"`
	PublicRatePerSecond float64       `yaml:"public_rate_per_second"`
	PublicBurst         int           `yaml:"public_burst"`
}

// DatabaseConfig selects the engine.
type DatabaseConfig struct {
	Driver       string `yaml:"driver"`
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
}

// PairingConfig is the pairing rules.
type PairingConfig struct {
	PINLength        int           `yaml:"pin_length"`
	PINTTL           time.Duration `yaml:"pin_ttl"`
	MaxAttempts      int           `yaml:"max_attempts"`
	LockDuration     time.Duration `yaml:"lock_duration"`
	GrantTTL         time.Duration `yaml:"grant_ttl"`
	MagicLink        bool          `yaml:"magic_link"`
	MagicLinkTTL     time.Duration `yaml:"magic_link_ttl"`
	ReissueInterval  time.Duration `yaml:"reissue_interval"`
	ResendInterval   time.Duration `yaml:"resend_interval"`
	KeyFailureBudget int           `yaml:"key_failure_budget"`
	KeyFailureWindow time.Duration `yaml:"key_failure_window"`
	DeepLinkTTL      time.Duration `yaml:"deep_link_ttl"`
}

// SiteConfig is what we know of the website.
type SiteConfig struct {
	LinkURL string `yaml:"link_url"`
	// Events to the site (site_events.go): the webhook and its retries,
	// and how long events stay listed for GET /v1/events.
	WebhookURL          string        `yaml:"webhook_url"`
	WebhookSecret       string        `yaml:"webhook_secret"`
	WebhookTimeout      time.Duration `yaml:"webhook_timeout"`
	WebhookRetryFor     time.Duration `yaml:"webhook_retry_for"`
	WebhookBackoffMin   time.Duration `yaml:"webhook_backoff_min"`
	WebhookBackoffMax   time.Duration `yaml:"webhook_backoff_max"`
	WebhookPollInterval time.Duration `yaml:"webhook_poll_interval"`
	WebhookWorkers      int           `yaml:"webhook_workers"`
	EventsRetention     time.Duration `yaml:"events_retention"`
}

// LogConfig is the logger.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// TemplatesConfig is where chat texts come from.
type TemplatesConfig struct {
	Dir            string `yaml:"dir"`
	FallbackLocale string `yaml:"fallback_locale"`
}

// ChannelConfig is one bot connection. Keys of the other type are ignored.
type ChannelConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// telegram
	Token         string        `yaml:"token"`
	Mode          string        `yaml:"mode"`
	APIEndpoint   string        `yaml:"api_endpoint"`
	WebhookSecret string        `yaml:"webhook_secret"`
	PollTimeout   time.Duration `yaml:"poll_timeout"`
	StatusDisplay string        `yaml:"status_display"`
	// messenger
	PageID          string `yaml:"page_id"`
	PageAccessToken string `yaml:"page_access_token"`
	AppID           string `yaml:"app_id"`
	AppSecret       string `yaml:"app_secret"`
	VerifyToken     string `yaml:"verify_token"`
	GraphURL        string `yaml:"graph_url"`
	Role            string `yaml:"role"`
	TargetAppID     string `yaml:"target_app_id"`
	MessageTag      string `yaml:"message_tag"`
	LoginURL        string `yaml:"login_url"`
	IDMatching      bool   `yaml:"id_matching"`
}

// defaultConfig is the embedded default: SQLite in the working directory,
// loopback only, no channels.
func defaultConfig() Config {
	return Config{
		Server: ServerConfig{
			Listen:              "127.0.0.1:8080",
			BodyLimit:           64 << 10,
			ReadHeaderTimeout:   5 * time.Second,
			ReadTimeout:         15 * time.Second,
			WriteTimeout:        30 * time.Second,
			IdleTimeout:         120 * time.Second,
			ShutdownTimeout:     10 * time.Second,
			PublicRatePerSecond: 20,
			PublicBurst:         40,
		},
		Database: DatabaseConfig{Driver: "sqlite", DSN: "pairingd.db"},
		Pairing: PairingConfig{
			PINLength: 6, PINTTL: 10 * time.Minute, MaxAttempts: 5, LockDuration: 15 * time.Minute,
			GrantTTL: 10 * time.Minute, MagicLinkTTL: time.Hour, ReissueInterval: 10 * time.Second,
			ResendInterval: time.Minute, KeyFailureBudget: 300, KeyFailureWindow: 10 * time.Minute,
			DeepLinkTTL: 15 * time.Minute,
		},
		Site: SiteConfig{
			LinkURL:        "http://localhost:3000/pair?buid={buid}",
			WebhookTimeout: 10 * time.Second, WebhookRetryFor: 24 * time.Hour,
			WebhookBackoffMin: 5 * time.Second, WebhookBackoffMax: time.Hour,
			WebhookPollInterval: time.Second, WebhookWorkers: 4, EventsRetention: 30 * 24 * time.Hour,
		},
		Log:       LogConfig{Level: "info", Format: "text"},
		Templates: TemplatesConfig{FallbackLocale: "en"},
		Inbound:   defaultInbound(),
		Notify:    defaultNotifyConfig(),
		Audit:     defaultAudit(),
	}
}

// loadConfig reads the file (if any) over the defaults, applies the
// environment, and validates.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "PAIRINGD", getenv); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// applyEnv walks the config struct and overrides each leaf from the
// environment variable named after its yaml path.
func applyEnv(v reflect.Value, prefix string, getenv func(string) string) error {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			tag := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if err := applyEnv(v.Field(i), prefix+"_"+strings.ToUpper(tag), getenv); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			// Items may be added from the environment alone: index n exists
			// if any PAIRINGD_<LIST>_<n>_NAME is set.
			for n := v.Len(); getenv(fmt.Sprintf("%s_%d_NAME", prefix, n)) != ""; n++ {
				v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
			}
			for i := 0; i < v.Len(); i++ {
				if err := applyEnv(v.Index(i), fmt.Sprintf("%s_%d", prefix, i), getenv); err != nil {
					return err
				}
			}
			return nil
		}
	}
	raw, ok, err := envValue(prefix, getenv)
	if err != nil || !ok {
		return err
	}
	if err := setLeaf(v, raw); err != nil {
		return fmt.Errorf("config: %s: %w", prefix, err)
	}
	return nil
}

// envValue reads NAME, or the file named by NAME_FILE.
func envValue(name string, getenv func(string) string) (string, bool, error) {
	if f := getenv(name + "_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", false, fmt.Errorf("config: %s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	}
	if s := getenv(name); s != "" {
		return s, true, nil
	}
	return "", false, nil
}

func setLeaf(v reflect.Value, raw string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (like 90s, 10m, 1h): %q", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		v.SetBool(b)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// Validate checks the whole configuration once, before anything starts;
// the error names the key and why.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...)))
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		bad("server.listen", "must be host:port, got %q", c.Server.Listen)
	}
	if c.Server.PublicURL != "" {
		if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("server.public_url", "must be an absolute http(s) URL")
		}
	}
	if c.Server.Secret != "" && len(c.Server.Secret) < 32 {
		bad("server.secret", "must be at least 32 characters (leave empty to generate and store one)")
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("server.trusted_proxies", "%q is not an IP or CIDR", p)
			}
		}
	}
	if c.Server.BodyLimit < 1024 || c.Server.BodyLimit > 16<<20 {
		bad("server.body_limit", "must be between 1024 and 16777216 bytes")
	}
	for key, d := range map[string]time.Duration{
		"server.read_header_timeout": c.Server.ReadHeaderTimeout, "server.read_timeout": c.Server.ReadTimeout,
		"server.write_timeout": c.Server.WriteTimeout, "server.idle_timeout": c.Server.IdleTimeout,
		"server.shutdown_timeout": c.Server.ShutdownTimeout, "pairing.pin_ttl": c.Pairing.PINTTL,
		"pairing.lock_duration": c.Pairing.LockDuration, "pairing.grant_ttl": c.Pairing.GrantTTL,
		"pairing.magic_link_ttl": c.Pairing.MagicLinkTTL, "pairing.key_failure_window": c.Pairing.KeyFailureWindow,
		"pairing.deep_link_ttl": c.Pairing.DeepLinkTTL,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration")
		}
	}
	if c.Pairing.ReissueInterval < 0 || c.Pairing.ResendInterval < 0 {
		bad("pairing.reissue_interval/resend_interval", "must not be negative")
	}
	if c.Server.PublicRatePerSecond <= 0 || c.Server.PublicBurst < 1 {
		bad("server.public_rate_per_second/public_burst", "must be positive")
	}
	switch c.Database.Driver {
	case "sqlite", "postgres":
	default:
		bad("database.driver", "must be sqlite or postgres, got %q", c.Database.Driver)
	}
	if c.Database.DSN == "" {
		bad("database.dsn", "must not be empty")
	}
	if c.Pairing.PINLength < 4 || c.Pairing.PINLength > 12 {
		bad("pairing.pin_length", "must be 4..12")
	}
	if c.Pairing.MaxAttempts < 1 || c.Pairing.MaxAttempts > 100 {
		bad("pairing.max_attempts", "must be 1..100")
	}
	if c.Pairing.KeyFailureBudget < 1 {
		bad("pairing.key_failure_budget", "must be at least 1")
	}
	if !strings.Contains(c.Site.LinkURL, "{buid}") {
		bad("site.link_url", "must contain {buid}")
	} else if u, err := url.Parse(strings.ReplaceAll(c.Site.LinkURL, "{buid}", "x")); err != nil || u.Host == "" {
		bad("site.link_url", "must be an absolute URL")
	}
	errs = append(errs, c.Site.validateEvents()...)
	errs = append(errs, c.Inbound.validate()...)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json")
	}
	errs = append(errs, c.Notify.validate()...)
	errs = append(errs, c.Audit.validate()...)
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		if err := pairing.ValidateChannelName(ch.Name); err != nil {
			bad(key+".name", "%v", err)
		} else if seen[ch.Name] {
			bad(key+".name", "%q is used twice", ch.Name)
		}
		seen[ch.Name] = true
		switch ch.Type {
		case "telegram":
			if ch.Token == "" {
				bad(key+".token", "is required for a telegram channel")
			}
			switch ch.Mode {
			case "", "polling":
			case "webhook":
				if c.Server.PublicURL == "" {
					bad(key+".mode", "webhook mode needs server.public_url")
				}
			default:
				bad(key+".mode", "must be polling or webhook")
			}
		case "messenger":
			for k, v := range map[string]string{"page_id": ch.PageID, "page_access_token": ch.PageAccessToken, "app_secret": ch.AppSecret, "verify_token": ch.VerifyToken} {
				if v == "" {
					bad(key+"."+k, "is required for a messenger channel")
				}
			}
		default:
			bad(key+".type", "must be telegram or messenger, got %q", ch.Type)
		}
	}
	return errors.Join(errs...)
}
