package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/bots/telegram"
)

// testEnv is an environment of a test.
type testEnv map[string]string

func env(m map[string]string) testEnv { return m }

// loadTestConfig loads with the variables of e as the whole environment,
// so that misspelled ones are reported too.
func loadTestConfig(path string, e testEnv) (Config, error) {
	var names []string
	for k := range e {
		names = append(names, k)
	}
	return loadConfigFrom(path, func(k string) string { return e[k] }, names)
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg, err := loadTestConfig("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:8080" || cfg.Database.Driver != "sqlite" || cfg.Database.DSN != "pairingd.db" {
		t.Fatalf("%+v", cfg)
	}
}

// TestExampleConfigIsTheDefaults: config.example.yaml parses, every key
// its values set equals the packages' defaults, and the channel examples
// (commented out) equal the adapters' defaults where they show one.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadTestConfig("../../config.example.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Compared as YAML, where an empty list and none are the same.
	got, _ := yaml.Marshal(cfg)
	want, _ := yaml.Marshal(defaultConfig())
	if string(got) != string(want) {
		t.Fatalf("example disagrees with the defaults:\n%s\nwant:\n%s", got, want)
	}
	var chans []ChannelConfig
	if err := yaml.Unmarshal([]byte(exampleChannels(t)), &chans); err != nil {
		t.Fatal(err)
	}
	if len(chans) != 2 {
		t.Fatalf("channel examples: %d", len(chans))
	}
	tg, fb := *chans[0].Settings.(*telegram.Config), *chans[1].Settings.(*messenger.PageConfig)
	tg.Name, tg.Token = "", ""
	if def := telegram.DefaultConfig(); !reflect.DeepEqual(tg, def) {
		t.Errorf("telegram example disagrees with the defaults:\n%+v\n%+v", tg, def)
	}
	fb.Name, fb.PageID, fb.PageAccessToken, fb.AppID, fb.AppSecret, fb.VerifyToken = "", "", "", "", "", ""
	if def := messenger.DefaultPageConfig(); !reflect.DeepEqual(fb, def) {
		t.Errorf("messenger example disagrees with the defaults:\n%+v\n%+v", fb, def)
	}
}

// exampleChannels is the commented channel examples of config.example.yaml,
// uncommented.
func exampleChannels(t *testing.T) string {
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n# Example:\n")
	if !ok {
		t.Fatal("config.example.yaml has no channel example")
	}
	var out []string
	for _, line := range strings.Split(after, "\n") {
		if strings.HasPrefix(line, "#") {
			out = append(out, strings.TrimPrefix(line, "#"))
		}
	}
	return strings.Join(out, "\n")
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	var doc map[string]any
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	channels := exampleChannels(t)
	var missing []string
	walkKeys(func(path string) {
		if strings.HasPrefix(path, "channels[") {
			leaf := path[strings.LastIndex(path, ".")+1:]
			if !strings.Contains(channels, " "+leaf+":") {
				missing = append(missing, path)
			}
			return
		}
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			if _, ok := m[k]; !ok {
				missing = append(missing, path)
				return
			}
			v = m[k]
		}
	})
	if len(missing) > 0 {
		t.Fatalf("config.example.yaml lacks %v", missing)
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("123:abc\n"), 0o600)
	cfg, err := loadTestConfig("", env(map[string]string{
		"PAIRINGD_SERVER_LISTEN":                       "0.0.0.0:9000",
		"PAIRINGD_DATABASE_DRIVER":                     "postgres",
		"PAIRINGD_DATABASE_DSN":                        "postgres://x@y/z",
		"PAIRINGD_PAIRING_PIN_TTL":                     "5m",
		"PAIRINGD_PAIRING_MAGIC_LINK_TTL":              "1h",
		"PAIRINGD_PAIRING_SECRET":                      strings.Repeat("s", 32),
		"PAIRINGD_SERVER_TRUSTED_PROXIES":              "10.0.0.0/8, 192.168.1.1",
		"PAIRINGD_SERVER_AUTH_FAILURE_BURST":           "3",
		"PAIRINGD_SERVER_AUTH_FAILURE_RATE_PER_SECOND": "0.5",
		"PAIRINGD_SERVER_PUBLIC_RATE_PER_SECOND":       "7.5",
		"PAIRINGD_CHANNELS_0_NAME":                     "telegram",
		"PAIRINGD_CHANNELS_0_TYPE":                     "telegram",
		"PAIRINGD_CHANNELS_0_TOKEN_FILE":               tokenFile,
		"PAIRINGD_CHANNELS_0_RATE_PER_SECOND":          "5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := cfg.Channels[0].Settings.(*telegram.Config)
	if cfg.Server.Listen != "0.0.0.0:9000" || cfg.Database.Driver != "postgres" || cfg.Pairing.PINTTL != 5*time.Minute ||
		cfg.Pairing.MagicLinkTTL != time.Hour || string(cfg.Pairing.Secret) != strings.Repeat("s", 32) || len(cfg.Server.TrustedProxies) != 2 ||
		len(cfg.Channels) != 1 || tg == nil || tg.Token != "123:abc" || tg.Name != "telegram" || tg.Pace.RatePerSecond != 5 {
		t.Fatalf("%+v", cfg)
	}
	// The API limits that once could not be configured (the webhook body
	// and header limits, keys for a while, are fixed again: see
	// TestMisspelledKeysNameTheNearest).
	if s := cfg.Server; s.AuthFailureBurst != 3 || s.AuthFailureRatePerSecond != 0.5 || s.PublicRatePerSecond != 7.5 {
		t.Fatalf("%+v", s)
	}
}

func TestChannelsFromFileDecodeByType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("server:\n  public_url: https://pair.example\ntemplates:\n  fallback_locale: fr\nchannels:\n"+
		"  - name: tg\n    type: telegram\n    token: \"1:x\"\n    mode: webhook\n    per_chat_interval: 2s\n"+
		"  - name: fb\n    type: messenger\n    page_id: \"1\"\n    page_access_token: t\n    app_secret: s\n    verify_token: v\n"), 0o600)
	cfg, err := loadTestConfig(path, env(map[string]string{"PAIRINGD_CHANNELS_1_ROLE": "secondary", "PAIRINGD_CHANNELS_1_APP_ID": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Channels[0].Settings.(*telegram.Config)
	fb := cfg.Channels[1].Settings.(*messenger.PageConfig)
	if tg.Mode != "webhook" || tg.PublicURL != "https://pair.example" || tg.FallbackLocale != "fr" || tg.Pace.PerChatInterval != 2*time.Second ||
		tg.Pace.RatePerSecond != telegram.DefaultRatePerSecond || tg.PollTimeout != telegram.DefaultPollTimeout {
		t.Fatalf("telegram %+v", tg)
	}
	if fb.Name != "fb" || fb.Role != "secondary" || fb.AppID != "7" || fb.MessageTag != messenger.DefaultMessageTag || fb.FallbackLocale != "fr" {
		t.Fatalf("messenger %+v", fb)
	}
}

func TestMisspelledKeysNameTheNearest(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	cases := []struct {
		file string
		env  map[string]string
		want string
	}{
		{write("server:\n  listn: x\n"), nil, `unknown key "server.listn" (did you mean "server.listen"?)`},
		{write("jobs:\n  send_timout: 1s\n"), nil, `unknown key "jobs.send_timout" (did you mean "jobs.send_timeout"?)`},
		{write("channels:\n  - name: tg\n    type: telegram\n    tokn: x\n"), nil, `unknown key "channels[0].tokn" (did you mean "channels[0].token"?)`},
		{write("channels:\n  - name: fb\n    type: messenger\n    page_idd: x\n"), nil, `(did you mean "channels[0].page_id"?)`},
		{write("pairing:\n  magic_link: true\n"), nil, `unknown key "pairing.magic_link" (dropped: pairing.magic_link_ttl above 0`},
		{write("site:\n  link_url: https://x/{buid}\n"), nil, `unknown key "site.link_url" (moved to pairing.link_url)`},
		{write("notify:\n  lease: 1m\n"), nil, `unknown key "notify.lease" (dropped: the lease is six times jobs.send_timeout)`},
		{write("site:\n  webhook_timeout: 5s\n"), nil, `unknown key "site.webhook_timeout" (moved to jobs.send_timeout, one bound for a send`},
		{write("jobs:\n  inbound:\n    max_age: 2h\n"), nil, `unknown key "jobs.inbound.max_age" (dropped: an inbound event is given up 1h after it arrived)`},
		{write("jobs:\n  notify:\n    max_age: 2h\n"), nil, `unknown key "jobs.notify.max_age" (moved to jobs.max_age, one give-up age`},
		{write("colour: red\n"), nil, `unknown key "colour"`},
		{"", map[string]string{"PAIRINGD_SERVER_LISTN": "x"}, "unknown environment variable PAIRINGD_SERVER_LISTN (did you mean PAIRINGD_SERVER_LISTEN?)"},
		{"", map[string]string{"PAIRINGD_SERVER_LISTN_FILE": "x"}, "(did you mean PAIRINGD_SERVER_LISTEN_FILE?)"},
		{"", map[string]string{"PAIRINGD_CHANNELS_0_NAME": "tg", "PAIRINGD_CHANNELS_0_TYPE": "telegram", "PAIRINGD_CHANNELS_0_TOKEN": "1:x", "PAIRINGD_CHANNELS_0_POLL_TIMOUT": "3s"},
			"(did you mean PAIRINGD_CHANNELS_0_POLL_TIMEOUT?)"},
		{"", map[string]string{"PAIRINGD_SITE_LINK_URL": "https://x/{buid}"}, "unknown environment variable PAIRINGD_SITE_LINK_URL (moved to pairing.link_url)"},
		{"", map[string]string{"PAIRINGD_JOBS_SITE_EVENTS_MAX_AGE": "2h"}, "PAIRINGD_JOBS_SITE_EVENTS_MAX_AGE (moved to jobs.max_age, one give-up age for site events and notifications)"},
		{"", map[string]string{"PAIRINGD_PAIRING_MAGIC_LINK": "true"}, "PAIRINGD_PAIRING_MAGIC_LINK (dropped: pairing.magic_link_ttl above 0 turns magic links on"},
		// Keys of the last release that are now fixed or derived.
		{write("server:\n  read_timeout: 20s\n"), nil, `unknown key "server.read_timeout" (dropped: fixed at 15s)`},
		{write("server:\n  write_timeout: 1m\n"), nil, `unknown key "server.write_timeout" (dropped: fixed at 30s)`},
		{write("server:\n  idle_timeout: 1m\n"), nil, `unknown key "server.idle_timeout" (dropped: fixed at 2m)`},
		{write("server:\n  max_header_bytes: 4096\n"), nil, `unknown key "server.max_header_bytes" (dropped: fixed at 64 KiB)`},
		{write("server:\n  webhook_body_limit: 2048\n"), nil, `unknown key "server.webhook_body_limit" (dropped: fixed at 1 MiB)`},
		{write("server:\n  public_burst: 40\n"), nil, `unknown key "server.public_burst" (dropped: the burst is twice server.public_rate_per_second)`},
		{write("oidc:\n  access_token_ttl: 1h\n"), nil, `unknown key "oidc.access_token_ttl" (moved to oidc.token_ttl, one lifetime for access and ID tokens)`},
		{write("oidc:\n  id_token_ttl: 1h\n"), nil, `unknown key "oidc.id_token_ttl" (moved to oidc.token_ttl, one lifetime for access and ID tokens)`},
		{write("oidc:\n  code_ttl: 1m\n"), nil, `unknown key "oidc.code_ttl" (dropped: fixed at 1m)`},
		{write("oidc:\n  link_window: 10m\n"), nil, `unknown key "oidc.link_window" (dropped: fixed at 10m)`},
		{"", map[string]string{"PAIRINGD_SERVER_READ_TIMEOUT": "20s"}, "unknown environment variable PAIRINGD_SERVER_READ_TIMEOUT (dropped: fixed at 15s)"},
		{"", map[string]string{"PAIRINGD_SERVER_WRITE_TIMEOUT": "1m"}, "unknown environment variable PAIRINGD_SERVER_WRITE_TIMEOUT (dropped: fixed at 30s)"},
		{"", map[string]string{"PAIRINGD_SERVER_IDLE_TIMEOUT": "1m"}, "unknown environment variable PAIRINGD_SERVER_IDLE_TIMEOUT (dropped: fixed at 2m)"},
		{"", map[string]string{"PAIRINGD_SERVER_MAX_HEADER_BYTES": "4096"}, "unknown environment variable PAIRINGD_SERVER_MAX_HEADER_BYTES (dropped: fixed at 64 KiB)"},
		{"", map[string]string{"PAIRINGD_SERVER_WEBHOOK_BODY_LIMIT": "2048"}, "unknown environment variable PAIRINGD_SERVER_WEBHOOK_BODY_LIMIT (dropped: fixed at 1 MiB)"},
		{"", map[string]string{"PAIRINGD_SERVER_PUBLIC_BURST_FILE": "/x"}, "unknown environment variable PAIRINGD_SERVER_PUBLIC_BURST_FILE (dropped: the burst is twice server.public_rate_per_second)"},
		{"", map[string]string{"PAIRINGD_OIDC_ACCESS_TOKEN_TTL": "2h"}, "unknown environment variable PAIRINGD_OIDC_ACCESS_TOKEN_TTL (moved to oidc.token_ttl"},
		{"", map[string]string{"PAIRINGD_OIDC_ID_TOKEN_TTL": "2h"}, "unknown environment variable PAIRINGD_OIDC_ID_TOKEN_TTL (moved to oidc.token_ttl"},
		{"", map[string]string{"PAIRINGD_OIDC_CODE_TTL": "30s"}, "unknown environment variable PAIRINGD_OIDC_CODE_TTL (dropped: fixed at 1m)"},
		{"", map[string]string{"PAIRINGD_OIDC_LINK_WINDOW": "5m"}, "unknown environment variable PAIRINGD_OIDC_LINK_WINDOW (dropped: fixed at 10m)"},
	}
	for _, c := range cases {
		_, err := loadTestConfig(c.file, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want %s", c.file, c.env, err, c.want)
		}
	}
	// Not misspellings: the config file's variable and the pprof listener.
	if _, err := loadTestConfig("", env(map[string]string{"PAIRINGD_CONFIG": "", "PAIRINGD_PPROF_LISTEN": "127.0.0.1:6060"})); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	cases := []struct {
		file string
		env  map[string]string
		want string
	}{
		{"", map[string]string{"PAIRINGD_PAIRING_PIN_TTL": "soon"}, "PAIRINGD_PAIRING_PIN_TTL"},
		{"", map[string]string{"PAIRINGD_DATABASE_DRIVER": "mysql"}, "database.driver"},
		{"", map[string]string{"PAIRINGD_PAIRING_PIN_TTL": "-1m"}, "pairing.pin_ttl"},
		{"", map[string]string{"PAIRINGD_PAIRING_LINK_URL": "https://x/"}, "pairing.link_url"},
		{"", map[string]string{"PAIRINGD_PAIRING_SECRET": "short"}, "pairing.secret: must be at least 32"},
		{"", map[string]string{"PAIRINGD_PAIRING_MAGIC_LINK_TTL": "-1m"}, "pairing.magic_link_ttl"},
		{"", map[string]string{"PAIRINGD_SERVER_LISTEN": "nonsense"}, "server.listen"},
		{"", map[string]string{"PAIRINGD_SERVER_AUTH_FAILURE_BURST": "-1"}, "server.auth_failure_rate_per_second/auth_failure_burst"},
		{"", map[string]string{"PAIRINGD_SERVER_PUBLIC_RATE_PER_SECOND": "-1"}, "server.public_rate_per_second: must be positive"},
		{"", map[string]string{"PAIRINGD_JOBS_SEND_TIMEOUT": "0s"}, "jobs.send_timeout"},
		{write("server:\n  lisen: x\n"), nil, "lisen"},
		{write("channels:\n  - name: tg\n    type: telegram\n"), nil, "channels[0].token"},
		{write("channels:\n  - name: tg\n    type: telegram\n    token: \"1:x\"\n    mode: webhook\n"), nil, "server.public_url"},
		{write("channels:\n  - name: Bad Name\n    type: telegram\n    token: \"1:x\"\n"), nil, "channels[0].name"},
		{write("channels:\n  - name: fb\n    type: messenger\n"), nil, "channels[0].page_id"},
		{write("channels:\n  - name: x\n    type: viber\n"), nil, "channels[0].type"},
		{write("channels:\n  - name: tg\n    type: telegram\n    token: \"1:x\"\n  - name: tg\n    type: telegram\n    token: \"2:x\"\n"), nil, `channels[1].name: "tg" is used twice`},
		{write("channels:\n  - name: tg\n    type: telegram\n    token: \"1:x\"\n    rate_per_second: -1\n"), nil, "channels[0].rate_per_second"},
		{write("server:\n  trusted_proxies: [\"not-an-ip\"]\n"), nil, "server.trusted_proxies"},
	}
	for _, c := range cases {
		_, err := loadTestConfig(c.file, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want mention of %s", c.file, c.env, err, c.want)
		}
	}
}

// TestOIDCConfig: the oidc section is validated with its key names; a
// session_ttl of 0 (no sessions) stays 0; enabling the provider needs the
// issuer, server.public_url.
func TestOIDCConfig(t *testing.T) {
	cfg, err := loadTestConfig("", env(map[string]string{"PAIRINGD_OIDC_SESSION_TTL": "0s", "PAIRINGD_OIDC_TOKEN_TTL": "2h"}))
	if err != nil || cfg.OIDC.SessionTTL != 0 || cfg.OIDC.TokenTTL != 2*time.Hour || cfg.OIDC.KeyRetention() != 2*time.Hour+5*time.Minute {
		t.Fatalf("session_ttl 0: %+v, %v", cfg.OIDC, err)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PAIRINGD_OIDC_TOKEN_TTL": "30s"}, "config: oidc.token_ttl: must be at least 1m"},
		{map[string]string{"PAIRINGD_OIDC_REQUEST_TTL": "11m"}, "config: oidc.request_ttl: must be 2s..10m"},
		{map[string]string{"PAIRINGD_OIDC_POLL_INTERVAL": "100ms"}, "config: oidc.poll_interval: must be at least 500ms"},
		{map[string]string{"PAIRINGD_OIDC_ENABLED": "true"}, "config: oidc.enabled: needs server.public_url"},
	} {
		if _, err := loadTestConfig("", env(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want %q", c.env, err, c.want)
		}
	}
}

// TestBotFirstConfig: the per-channel keys of the hosted PIN page, the one
// tap and link notices, their defaults and what they need.
func TestBotFirstConfig(t *testing.T) {
	tg := map[string]string{
		"PAIRINGD_CHANNELS_0_NAME": "telegram", "PAIRINGD_CHANNELS_0_TYPE": "telegram", "PAIRINGD_CHANNELS_0_TOKEN": "1:abc",
		"PAIRINGD_CHANNELS_1_NAME": "fb", "PAIRINGD_CHANNELS_1_TYPE": "messenger", "PAIRINGD_CHANNELS_1_PAGE_ID": "1",
		"PAIRINGD_CHANNELS_1_PAGE_ACCESS_TOKEN": "t", "PAIRINGD_CHANNELS_1_APP_ID": "2", "PAIRINGD_CHANNELS_1_APP_SECRET": "s",
		"PAIRINGD_CHANNELS_1_VERIFY_TOKEN": "v",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range tg {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cfg, err := loadTestConfig("", env(with(nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range cfg.Channels {
		if o := sharedOptions(ch); !o.LinkNotices || o.PINPageClient != "" {
			t.Fatalf("%s defaults %+v", ch.Name(), o)
		}
	}
	if tc := cfg.Channels[0].Settings.(*telegram.Config); tc.OneTapURL != "" || tc.OneTapOff != "" {
		t.Fatalf("one tap without asking: %+v", tc)
	}

	ok := with(map[string]string{"PAIRINGD_SERVER_PUBLIC_URL": "https://pairing.example", "PAIRINGD_OIDC_ENABLED": "true",
		"PAIRINGD_CHANNELS_0_PIN_PAGE_CLIENT": "c1", "PAIRINGD_CHANNELS_0_ONE_TAP": "true", "PAIRINGD_CHANNELS_1_LINK_NOTICES": "false"})
	cfg, err = loadTestConfig("", env(ok))
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Channels[0].Settings.(*telegram.Config)
	if tc.OneTapURL != "https://pairing.example/pair/telegram/telegram" || sharedOptions(cfg.Channels[1]).LinkNotices {
		t.Fatalf("one tap %q, fb notices %v", tc.OneTapURL, sharedOptions(cfg.Channels[1]).LinkNotices)
	}
	clients, checkers := pinPageDeps(cfg)
	if clients["telegram"] != "c1" || checkers["telegram"] == nil || len(clients) != 1 {
		t.Fatalf("page deps %v %v", clients, checkers)
	}

	// one_tap without the page: no button, and a reason for the log.
	cfg, err = loadTestConfig("", env(with(map[string]string{"PAIRINGD_CHANNELS_0_ONE_TAP": "true"})))
	if tc := cfg.Channels[0].Settings.(*telegram.Config); err != nil || tc.OneTapURL != "" || !strings.Contains(tc.OneTapOff, "public_url") {
		t.Fatalf("one tap alone: %+v %v", tc, err)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PAIRINGD_CHANNELS_1_PIN_PAGE_CLIENT": "c1"}, "config: channels[1].pin_page_client: needs oidc.enabled"},
		{map[string]string{"PAIRINGD_CHANNELS_0_PIN_PAGE_CLIENT": "c1", "PAIRINGD_SERVER_PUBLIC_URL": "https://p.example",
			"PAIRINGD_OIDC_ENABLED": "true", "PAIRINGD_OIDC_SESSION_TTL": "0s"}, "config: channels[0].pin_page_client: needs oidc.session_ttl"},
	} {
		if _, err := loadTestConfig("", env(with(c.env))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want %q", c.env, err, c.want)
		}
	}
}
