package pairing

import (
	"context"
	"errors"
	"strings"
	"unicode"
)

const keyPrefix = "pdk_"

// CreateAPIKey makes a new API key and returns it with its secret, which is
// shown this once and stored only as a SHA-256.
func (s *Service) CreateAPIKey(ctx context.Context, name string) (APIKey, string, error) {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return APIKey{}, "", invalid("name", "must be 1..64 printable characters")
	}
	secret, err := randomToken(s.rand, keyPrefix)
	if err != nil {
		return APIKey{}, "", err
	}
	k, err := s.store.CreateAPIKey(ctx, APIKey{
		Name:      name,
		Prefix:    secret[:len(keyPrefix)+6],
		Hash:      HashToken([]byte(secret)),
		CreatedAt: s.now(),
	})
	if err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

// ListAPIKeys lists every key, revoked ones included.
func (s *Service) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	return s.store.ListAPIKeys(ctx)
}

// RevokeAPIKey revokes a key by id or name.
func (s *Service) RevokeAPIKey(ctx context.Context, idOrName string) error {
	if idOrName == "" {
		return invalid("key", "id or name is required")
	}
	return s.store.RevokeAPIKey(ctx, idOrName, s.now())
}

// Authenticate finds the active key for a bearer token. Lookup is by
// digest and the digests are compared in constant time.
func (s *Service) Authenticate(ctx context.Context, token string) (APIKey, error) {
	if !strings.HasPrefix(token, keyPrefix) || len(token) > 128 {
		return APIKey{}, ErrUnauthorized
	}
	h := HashToken([]byte(token))
	k, err := s.store.APIKeyByHash(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return APIKey{}, err
	}
	if !equalHash(k.Hash, h) || !k.RevokedAt.IsZero() {
		return APIKey{}, ErrUnauthorized
	}
	return k, nil
}
