package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/pairingd/pairingd/store"
)

// ID tokens are signed with RS256, the algorithm OpenID Connect Discovery
// requires every provider to offer, so any relying party can verify them.
const keyAlgorithm = jose.RS256

// keyRefresh bounds how long an instance signs with a key another
// instance (or the rotate command) has retired.
const keyRefresh = 10 * time.Second

// KeyStore keeps signing keys.
type KeyStore interface {
	SigningKeys(ctx context.Context, since time.Time) ([]store.SigningKeyRecord, error)
	AddSigningKey(ctx context.Context, k store.SigningKeyRecord, retire bool) error
}

// signingKey is a parsed key: op.SigningKey for the current one, op.Key
// (its public half) for the JWKS.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return keyAlgorithm }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return keyAlgorithm }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// keyRing reads the keys from the database, parses each once and rereads
// the list every keyRefresh.
type keyRing struct {
	st        KeyStore
	retention time.Duration
	now       func() time.Time

	mu     sync.Mutex
	parsed map[string]signingKey
	list   []signingKey // current first
	read   time.Time
}

func newKeyRing(st KeyStore, retention time.Duration, now func() time.Time) *keyRing {
	return &keyRing{st: st, retention: retention, now: now, parsed: map[string]signingKey{}}
}

// keys lists the keys, current first; fresh reads the database even
// within keyRefresh (the JWKS: a rotation shows there at once).
func (r *keyRing) keys(ctx context.Context, fresh bool) ([]signingKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !fresh && len(r.list) > 0 && now.Sub(r.read) < keyRefresh {
		return r.list, nil
	}
	recs, err := r.st.SigningKeys(ctx, now.Add(-r.retention))
	if err != nil {
		return nil, err
	}
	list := make([]signingKey, 0, len(recs))
	for _, rec := range recs {
		k, ok := r.parsed[rec.ID]
		if !ok {
			priv, err := x509.ParsePKCS8PrivateKey(rec.PrivateKey)
			if err != nil {
				return nil, fmt.Errorf("oidc: signing key %s: %w", rec.ID, err)
			}
			rk, ok := priv.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("oidc: signing key %s is not RSA", rec.ID)
			}
			k = signingKey{id: rec.ID, key: rk}
			r.parsed[rec.ID] = k
		}
		if rec.RetiredAt.IsZero() {
			list = append([]signingKey{k}, list...)
		} else {
			list = append(list, k)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("oidc: no signing key (run pairingd migrate or signing-keys rotate)")
	}
	r.list, r.read = list, now
	return list, nil
}

func (r *keyRing) current(ctx context.Context) (op.SigningKey, error) {
	l, err := r.keys(ctx, false)
	if err != nil {
		return nil, err
	}
	return l[0], nil
}

func (r *keyRing) public(ctx context.Context) ([]op.Key, error) {
	l, err := r.keys(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(l))
	for i, k := range l {
		out[i] = publicKey{k}
	}
	return out, nil
}

// EnsureSigningKey makes the first key when there is none in use.
func EnsureSigningKey(ctx context.Context, st KeyStore, now time.Time) error {
	recs, err := st.SigningKeys(ctx, now)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.RetiredAt.IsZero() {
			return nil
		}
	}
	_, err = addKey(ctx, st, now, false)
	return err
}

// RotateSigningKey makes a new key and retires the one in use; the old
// key stays in the JWKS until the tokens it signed have expired.
func RotateSigningKey(ctx context.Context, st KeyStore, now time.Time) (string, error) {
	return addKey(ctx, st, now, true)
}

func addKey(ctx context.Context, st KeyStore, now time.Time, retire bool) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	kid := base64.RawURLEncoding.EncodeToString(id)
	return kid, st.AddSigningKey(ctx, store.SigningKeyRecord{ID: kid, Algorithm: string(keyAlgorithm), PrivateKey: der, CreatedAt: now}, retire)
}
