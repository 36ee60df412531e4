package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/pairingd/pairingd/store/storetest"
)

// The signing key follows oidc.signing_algorithm; a change adds a key of
// the new algorithm, the old one stays in the JWKS and in discovery's list
// until a rotation retires it and its retention ends.
func TestSigningKeysFollowTheAlgorithm(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	if err := EnsureSigningKey(ctx, st, now, AlgRS256); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSigningKey(ctx, st, now, AlgRS256); err != nil {
		t.Fatal(err)
	}
	rs := &storage{st: st, keys: newKeyRing(st, AlgRS256, time.Hour, clock)}
	k, err := rs.SigningKey(ctx)
	if err != nil || k.SignatureAlgorithm() != jose.RS256 {
		t.Fatalf("RS256 key: %v, %v", k, err)
	}
	if _, ok := k.Key().(*rsa.PrivateKey); !ok {
		t.Fatalf("RS256 key is %T", k.Key())
	}
	if pub, _ := rs.KeySet(ctx); len(pub) != 1 {
		t.Fatalf("EnsureSigningKey twice made %d keys", len(pub))
	}

	// Switch to ES256.
	now = now.Add(time.Minute)
	if err := EnsureSigningKey(ctx, st, now, AlgES256); err != nil {
		t.Fatal(err)
	}
	es := &storage{st: st, keys: newKeyRing(st, AlgES256, time.Hour, clock)}
	k, err = es.SigningKey(ctx)
	if err != nil || k.SignatureAlgorithm() != jose.ES256 {
		t.Fatalf("ES256 key: %v, %v", k, err)
	}
	if _, ok := k.Key().(*ecdsa.PrivateKey); !ok {
		t.Fatalf("ES256 key is %T", k.Key())
	}
	algs, _ := es.SignatureAlgorithms(ctx)
	if len(algs) != 2 || algs[0] != jose.ES256 || algs[1] != jose.RS256 {
		t.Fatalf("discovery algorithms %v", algs)
	}
	pub, _ := es.KeySet(ctx)
	if len(pub) != 2 {
		t.Fatalf("JWKS has %d keys, want the ES256 and the RS256 one", len(pub))
	}
	for _, p := range pub {
		switch p.Algorithm() {
		case jose.ES256:
			if _, ok := p.Key().(*ecdsa.PublicKey); !ok {
				t.Fatalf("ES256 JWKS entry holds %T", p.Key())
			}
		case jose.RS256:
			if _, ok := p.Key().(*rsa.PublicKey); !ok {
				t.Fatalf("RS256 JWKS entry holds %T", p.Key())
			}
		}
	}

	// A rotation retires both; past the retention only the new key is left.
	now = now.Add(time.Minute)
	if _, err := RotateSigningKey(ctx, st, now, AlgES256); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if pub, _ := es.KeySet(ctx); len(pub) != 1 || pub[0].Algorithm() != jose.ES256 {
		t.Fatalf("JWKS after the retention: %d keys", len(pub))
	}
	if _, err := RotateSigningKey(ctx, st, now, "HS256"); err == nil {
		t.Fatal("an unknown algorithm was accepted")
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.SigningAlgorithm = "HS256"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "signing_algorithm") {
		t.Fatalf("config with HS256: %v", err)
	}
}
