package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:8080" || cfg.Database.Driver != "sqlite" || cfg.Database.DSN != "pairingd.db" {
		t.Fatalf("%+v", cfg)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := loadConfig("../../config.example.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	def := defaultConfig()
	if cfg.Server.Listen != def.Server.Listen || cfg.Pairing != def.Pairing || cfg.Site != def.Site || cfg.Audit != def.Audit {
		t.Fatalf("example disagrees with the defaults:\n%+v\n%+v", cfg, def)
	}
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	walkKeys(func(path string) {
		leaf := path[strings.LastIndex(path, ".")+1:]
		if !strings.Contains(string(b), leaf+":") {
			missing = append(missing, path)
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
	cfg, err := loadConfig("", env(map[string]string{
		"PAIRINGD_SERVER_LISTEN":          "0.0.0.0:9000",
		"PAIRINGD_DATABASE_DRIVER":        "postgres",
		"PAIRINGD_DATABASE_DSN":           "postgres://x@y/z",
		"PAIRINGD_PAIRING_PIN_TTL":        "5m",
		"PAIRINGD_PAIRING_MAGIC_LINK":     "true",
		"PAIRINGD_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
		"PAIRINGD_CHANNELS_0_NAME":        "telegram",
		"PAIRINGD_CHANNELS_0_TYPE":        "telegram",
		"PAIRINGD_CHANNELS_0_TOKEN_FILE":  tokenFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "0.0.0.0:9000" || cfg.Database.Driver != "postgres" || cfg.Pairing.PINTTL != 5*time.Minute ||
		!cfg.Pairing.MagicLink || len(cfg.Server.TrustedProxies) != 2 || len(cfg.Channels) != 1 || cfg.Channels[0].Token != "123:abc" {
		t.Fatalf("%+v", cfg)
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
		{"", map[string]string{"PAIRINGD_SITE_LINK_URL": "https://x/"}, "site.link_url"},
		{"", map[string]string{"PAIRINGD_SERVER_LISTEN": "nonsense"}, "server.listen"},
		{write("server:\n  lisen: x\n"), nil, "lisen"},
		{write("channels:\n  - name: tg\n    type: telegram\n"), nil, "channels[0].token"},
		{write("channels:\n  - name: tg\n    type: telegram\n    token: x\n    mode: webhook\n"), nil, "server.public_url"},
		{write("channels:\n  - name: Bad Name\n    type: telegram\n    token: x\n"), nil, "channels[0].name"},
		{write("channels:\n  - name: fb\n    type: messenger\n"), nil, "channels[0].page_id"},
		{write("channels:\n  - name: x\n    type: viber\n"), nil, "channels[0].type"},
		{write("server:\n  trusted_proxies: [\"not-an-ip\"]\n"), nil, "server.trusted_proxies"},
	}
	for _, c := range cases {
		_, err := loadConfig(c.file, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want mention of %s", c.file, c.env, err, c.want)
		}
	}
}
