package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/api/oidc"
	"github.com/pairingd/pairingd/api/sitehook"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// Config is the whole configuration. Each section is the configuration of
// the package that uses it, with that package's defaults and validation;
// cmd only composes them. Every key is documented in config.example.yaml;
// each can be overridden by PAIRINGD_<PATH> (the yaml path upper-cased and
// joined by "_", list items by index: PAIRINGD_CHANNELS_0_TOKEN), and read
// from a file named by PAIRINGD_<PATH>_FILE (for secrets).
type Config struct {
	Server    api.Config         `yaml:"server"`
	Database  store.Config       `yaml:"database"`
	Pairing   pairing.Config     `yaml:"pairing"`
	Site      sitehook.Config    `yaml:"site"`
	Jobs      pairing.JobsConfig `yaml:"jobs"`
	Audit     AuditConfig        `yaml:"audit"`
	Log       LogConfig          `yaml:"log"`
	Templates TemplatesConfig    `yaml:"templates"`
	Channels  []ChannelConfig    `yaml:"channels"`
	OIDC      oidc.Config        `yaml:"oidc"`
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

// defaultConfig is the embedded default: SQLite in the working directory,
// loopback only, no channels.
func defaultConfig() Config {
	return Config{
		Server:    api.DefaultConfig(),
		Database:  store.DefaultConfig(),
		Pairing:   pairing.DefaultConfig(),
		Site:      sitehook.DefaultConfig(),
		Jobs:      pairing.DefaultJobsConfig(),
		Audit:     defaultAudit(),
		Log:       LogConfig{Level: "info", Format: "text"},
		Templates: TemplatesConfig{FallbackLocale: "en"},
		OIDC:      oidc.DefaultConfig(),
	}
}

// loadConfig reads the file (if any) over the defaults, applies the
// environment, and validates. The PAIRINGD_ variables checked for
// misspellings are those of the process environment that getenv sees.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	var names []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); getenv(name) != "" {
			names = append(names, name)
		}
	}
	return loadConfigFrom(path, getenv, names)
}

// loadConfigFrom is loadConfig with the environment's variable names given.
func loadConfigFrom(path string, getenv func(string) string, envNames []string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := decodeFile(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	known, err := applyEnv(&cfg, getenv)
	if err != nil {
		return cfg, err
	}
	if err := unknownEnv(envNames, known); err != nil {
		return cfg, err
	}
	cfg.derive()
	return cfg, cfg.Validate()
}

// decodeFile reads a YAML file over cfg. A key no section knows is an
// error naming the nearest real key.
func decodeFile(b []byte, cfg *Config) error {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	if err := unknownKeys(&root); err != nil {
		return err
	}
	return root.Decode(cfg)
}

// derive sets what the channels take from other sections.
func (c *Config) derive() {
	for _, ch := range c.Channels {
		if t, ok := channelTypes[ch.Type]; ok && ch.Settings != nil {
			t.inherit(ch.Settings, *c)
		}
	}
}

// Validate checks the whole configuration once, before anything starts;
// each error names its key path and why.
func (c Config) Validate() error {
	errs := keyErrors("server", c.Server.Validate())
	errs = append(errs, keyErrors("database", c.Database.Validate())...)
	errs = append(errs, keyErrors("pairing", c.Pairing.Validate())...)
	errs = append(errs, keyErrors("site", c.Site.Validate())...)
	errs = append(errs, keyErrors("jobs", c.Jobs.Validate())...)
	errs = append(errs, keyErrors("audit", c.Audit.Validate())...)
	errs = append(errs, keyErrors("oidc", c.OIDC.Validate())...)
	if c.OIDC.Enabled && c.Server.PublicURL == "" {
		errs = append(errs, errors.New("config: oidc.enabled: needs server.public_url (the issuer)"))
	}
	errs = append(errs, validateBotFirst(c)...)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, errors.New("config: log.level: must be debug, info, warn or error"))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, errors.New("config: log.format: must be text or json"))
	}
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		t, ok := channelTypes[ch.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("config: %s.type: must be one of %s, got %q", key, strings.Join(channelTypeNames(), ", "), ch.Type))
			continue
		}
		errs = append(errs, keyErrors(key, t.validate(ch.Settings))...)
		if name := ch.Name(); seen[name] {
			errs = append(errs, fmt.Errorf("config: %s.name: %q is used twice", key, name))
		} else {
			seen[name] = true
		}
	}
	return errors.Join(errs...)
}

// keyErrors puts "config: <prefix>." before each of a section's errors,
// which start with the key they are about.
func keyErrors(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, keyErrors(prefix, e)...)
		}
		return out
	}
	return []error{fmt.Errorf("config: %s.%w", prefix, err)}
}
