package store

import (
	"context"
	"errors"

	"github.com/pairingd/pairingd/pairing"
)

// The settings table keeps named values every instance shares.

// ServerSecret returns the server secret kept in the database, creating it
// with gen the first time. Instances starting together agree on one: the
// insert does nothing when a row exists, and everyone reads the row.
func (s *Store) ServerSecret(ctx context.Context, gen func() ([]byte, error)) ([]byte, error) {
	if v, err := s.setting(ctx, "server_secret"); !errors.Is(err, pairing.ErrNotFound) {
		return v, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, "server_secret", fresh); err != nil {
		return nil, err
	}
	return s.setting(ctx, "server_secret")
}

// setting reads on the writer: a value written a moment ago (by this or
// another instance) must be seen.
func (s *Store) setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	if err := s.queryOne(ctx, s.w, `SELECT value FROM settings WHERE name = ?`, []any{name}, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Store) putSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}
