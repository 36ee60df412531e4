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
	// RequestTTL is how long a sign-in (the page, its chat tokens) may take.
	RequestTTL time.Duration `yaml:"request_ttl"`
	// TokenTTL is the lifetime of issued tokens, access and ID tokens
	// alike.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// SessionTTL is how long a browser stays signed in to pairingd.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// PollInterval is how often the page asks whether the chat confirmed.
	PollInterval time.Duration `yaml:"poll_interval"`
	// SigningAlgorithm signs ID tokens: RS256 (every relying party's
	// default) or ES256 (much cheaper to sign; the relying party must be
	// told to expect it).
	SigningAlgorithm string `yaml:"signing_algorithm"`

	// codeTTL, above 0, replaces CodeTTL: for tests of this package only
	// (a benchmark makes its codes before the timer starts). No
	// configuration key sets it.
	codeTTL time.Duration
}

// CodeTTL is how long an authorization code can be exchanged, once: a
// minute is plenty, the site's backend exchanges the code at once, and a
// stolen code is worth less the sooner it expires.
const CodeTTL = time.Minute

// codeLifetime is CodeTTL, or a test's codeTTL.
func (c Config) codeLifetime() time.Duration {
	if c.codeTTL > 0 {
		return c.codeTTL
	}
	return CodeTTL
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		RequestTTL:       10 * time.Minute,
		TokenTTL:         time.Hour,
		SessionTTL:       24 * time.Hour,
		PollInterval:     2 * time.Second,
		SigningAlgorithm: AlgRS256,
	}
}

// Validate checks the configuration once, before anything starts; each
// error names its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, why string) { errs = append(errs, fmt.Errorf("%s: %s", key, why)) }
	// Below a minute is for tests of expiry; nobody opens a chat faster.
	if c.RequestTTL < 2*time.Second || c.RequestTTL > 10*time.Minute {
		bad("request_ttl", "must be 2s..10m (sign-in tokens live at most 10 minutes)")
	}
	if c.TokenTTL < time.Minute {
		bad("token_ttl", "must be at least 1m")
	}
	if c.SessionTTL < 0 {
		bad("session_ttl", "must not be negative")
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
	return c.TokenTTL + 5*time.Minute
}
