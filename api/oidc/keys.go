package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
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

// ID tokens are signed with RS256 unless oidc.signing_algorithm says
// ES256: RS256 is the algorithm OpenID Connect Discovery requires every
// provider to offer and the one relying parties assume when told nothing;
// ES256 signs about forty times faster (see docs/performance.md) for sites
// whose libraries are told to expect it.
const (
	AlgRS256 = string(jose.RS256)
	AlgES256 = string(jose.ES256)
)

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
	id      string
	alg     jose.SignatureAlgorithm
	key     crypto.Signer
	retired bool
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key.Public() }

// parseKey reads a stored key: PKCS#8 DER of an RSA or P-256 key.
func parseKey(rec store.SigningKeyRecord) (signingKey, error) {
	priv, err := x509.ParsePKCS8PrivateKey(rec.PrivateKey)
	if err != nil {
		return signingKey{}, fmt.Errorf("oidc: signing key %s: %w", rec.ID, err)
	}
	k := signingKey{id: rec.ID, retired: !rec.RetiredAt.IsZero()}
	switch pk := priv.(type) {
	case *rsa.PrivateKey:
		k.alg, k.key = jose.RS256, pk
	case *ecdsa.PrivateKey:
		if pk.Curve != elliptic.P256() {
			return signingKey{}, fmt.Errorf("oidc: signing key %s is not on P-256", rec.ID)
		}
		k.alg, k.key = jose.ES256, pk
	default:
		return signingKey{}, fmt.Errorf("oidc: signing key %s is neither RSA nor ECDSA", rec.ID)
	}
	if rec.Algorithm != "" && rec.Algorithm != string(k.alg) {
		return signingKey{}, fmt.Errorf("oidc: signing key %s is stored as %s but is %s", rec.ID, rec.Algorithm, k.alg)
	}
	return k, nil
}

// keyRing reads the keys from the database, parses each once and rereads
// the list every keyRefresh.
type keyRing struct {
	st        KeyStore
	alg       jose.SignatureAlgorithm // of the key that signs
	retention time.Duration
	now       func() time.Time

	mu     sync.Mutex
	parsed map[string]signingKey
	list   []signingKey // current first
	read   time.Time
}

func newKeyRing(st KeyStore, alg string, retention time.Duration, now func() time.Time) *keyRing {
	return &keyRing{st: st, alg: jose.SignatureAlgorithm(alg), retention: retention, now: now, parsed: map[string]signingKey{}}
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
		if !ok || k.retired != !rec.RetiredAt.IsZero() {
			var err error
			if k, err = parseKey(rec); err != nil {
				return nil, err
			}
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

// current is the newest key in use of the configured algorithm.
func (r *keyRing) current(ctx context.Context) (op.SigningKey, error) {
	l, err := r.keys(ctx, false)
	if err != nil {
		return nil, err
	}
	for _, k := range l {
		if !k.retired && k.alg == r.alg {
			return k, nil
		}
	}
	return nil, fmt.Errorf("oidc: no %s signing key in use (run pairingd signing-keys rotate)", r.alg)
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

// EnsureSigningKey makes the first key of alg when there is none in use
// (the first start, or a change of oidc.signing_algorithm; a key of the
// other algorithm stays in the JWKS until it is rotated away).
func EnsureSigningKey(ctx context.Context, st KeyStore, now time.Time, alg string) error {
	recs, err := st.SigningKeys(ctx, now)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.RetiredAt.IsZero() && r.Algorithm == alg {
			return nil
		}
	}
	_, err = addKey(ctx, st, now, false, alg)
	return err
}

// RotateSigningKey makes a new key of alg and retires every key in use;
// the old keys stay in the JWKS until the tokens they signed have
// expired.
func RotateSigningKey(ctx context.Context, st KeyStore, now time.Time, alg string) (string, error) {
	return addKey(ctx, st, now, true, alg)
}

func addKey(ctx context.Context, st KeyStore, now time.Time, retire bool, alg string) (string, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", fmt.Errorf("oidc: signing algorithm %q: must be %s or %s", alg, AlgRS256, AlgES256)
	}
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
	return kid, st.AddSigningKey(ctx, store.SigningKeyRecord{ID: kid, Algorithm: alg, PrivateKey: der, CreatedAt: now}, retire)
}
