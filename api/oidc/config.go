// Package oidc is pairingd's OpenID Provider ("Sign in with your
// messenger"): the zitadel/oidc op package speaks the protocol; this
// package gives it storage (store), a login UI (the hosted sign-in pages)
// and the claims, and lists the routes api mounts.
package oidc

import (
	"errors"
	"fmt"
	"time"
)

// Config is the provider's configuration, under the top-level key `oidc:`.
type Config struct {
	// Enabled mounts the provider and its pages.
	Enabled bool `yaml:"enabled"`
	// CodeTTL is how long an authorization code can be exchanged.
	CodeTTL time.Duration `yaml:"code_ttl"`
	// RequestTTL is how long a sign-in (the page, its chat tokens) may take.
	RequestTTL time.Duration `yaml:"request_ttl"`
	// AccessTokenTTL and IDTokenTTL are the lifetimes of issued tokens.
	AccessTokenTTL time.Duration `yaml:"access_token_ttl"`
	IDTokenTTL     time.Duration `yaml:"id_token_ttl"`
	// SessionTTL is how long a browser stays signed in to pairingd.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// LinkWindow is how long after a sign-in POST /v1/links/oidc may link
	// that person.
	LinkWindow time.Duration `yaml:"link_window"`
	// PollInterval is how often the page asks whether the chat confirmed.
	PollInterval time.Duration `yaml:"poll_interval"`
	// SigningAlgorithm signs ID tokens: RS256 (every relying party's
	// default) or ES256 (much cheaper to sign; the relying party must be
	// told to expect it).
	SigningAlgorithm string `yaml:"signing_algorithm"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		CodeTTL:          time.Minute,
		RequestTTL:       10 * time.Minute,
		AccessTokenTTL:   time.Hour,
		IDTokenTTL:       time.Hour,
		SessionTTL:       24 * time.Hour,
		LinkWindow:       10 * time.Minute,
		PollInterval:     2 * time.Second,
		SigningAlgorithm: AlgRS256,
	}
}

// Validate checks the configuration once, before anything starts; each
// error names its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, why string) { errs = append(errs, fmt.Errorf("%s: %s", key, why)) }
	if c.CodeTTL < time.Second || c.CodeTTL > 10*time.Minute {
		bad("code_ttl", "must be 1s..10m")
	}
	// Below a minute is for tests of expiry; nobody opens a chat faster.
	if c.RequestTTL < 2*time.Second || c.RequestTTL > 10*time.Minute {
		bad("request_ttl", "must be 2s..10m (sign-in tokens live at most 10 minutes)")
	}
	if c.AccessTokenTTL < time.Minute {
		bad("access_token_ttl", "must be at least 1m")
	}
	if c.IDTokenTTL < time.Minute {
		bad("id_token_ttl", "must be at least 1m")
	}
	if c.SessionTTL < 0 {
		bad("session_ttl", "must not be negative")
	}
	if c.LinkWindow < time.Minute {
		bad("link_window", "must be at least 1m")
	}
	if c.PollInterval < 500*time.Millisecond {
		bad("poll_interval", "must be at least 500ms")
	}
	if c.SigningAlgorithm != AlgRS256 && c.SigningAlgorithm != AlgES256 {
		bad("signing_algorithm", "must be RS256 or ES256")
	}
	return errors.Join(errs...)
}

// KeyRetention is how long a retired signing key stays in the JWKS: every
// token it signed has expired by then.
func (c Config) KeyRetention() time.Duration {
	return max(c.IDTokenTTL, c.AccessTokenTTL) + 5*time.Minute
}
