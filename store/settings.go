package store

import (
	"context"
)

// The settings table keeps named values every instance shares: today the
// readiness heartbeat, and the server secret of earlier releases, which
// kept it here (secret.go moves it out).

const legacySecretSetting = "server_secret"

// LegacyServerSecret returns the server secret an earlier release stored in
// the database, or pairing.ErrNotFound when there is none.
func (s *Store) LegacyServerSecret(ctx context.Context) ([]byte, error) {
	return s.setting(ctx, legacySecretSetting)
}

// ForgetLegacyServerSecret deletes the stored server secret if it is value
// (nil: whatever it is), and tells whether a row was deleted. On SQLite the
// row's bytes are overwritten (secure_delete) and the WAL is checkpointed
// and truncated, so the secret is not left in a free part of a page or in
// an old WAL frame of the file.
func (s *Store) ForgetLegacyServerSecret(ctx context.Context, value []byte) (bool, error) {
	q, args := `DELETE FROM settings WHERE name = ?`, []any{legacySecretSetting}
	if value != nil {
		q, args = q+` AND value = ?`, append(args, value)
	}
	if s.driver != SQLite {
		n, err := s.exec(ctx, q, args...)
		return n > 0, err
	}
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return false, translate(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return false, translate(err)
	}
	res, err := conn.ExecContext(ctx, q, args...)
	_, offErr := conn.ExecContext(ctx, `PRAGMA secure_delete = OFF`)
	if err != nil {
		return false, translate(err)
	}
	if offErr != nil {
		return false, translate(offErr)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return true, translate(err)
		}
	}
	return n > 0, nil
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
