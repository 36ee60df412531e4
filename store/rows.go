package store

import (
	"context"

	"github.com/pairingd/pairingd/pairing"
)

// The reads and inserts on the authorize path are plain SQL scanned into
// the models' fields: GORM's model reflection cost more than the query
// itself (profiled under load: about a third of a request's CPU).

const webUserColumns = `id, person_id, lead_id, buid_hash, pin_hash, pin_issued_at, pin_expires_at, pin_used_at,
	magic_expires_at, failed_attempts, locked_until, user_id, linked_at, created_at, updated_at`

func (w *webUserRow) fields() []any {
	return []any{&w.ID, &w.PersonID, &w.LeadID, &w.BUIDHash, &w.PINHash, &w.PINIssuedAt, &w.PINExpiresAt, &w.PINUsedAt,
		&w.MagicExpiresAt, &w.FailedAttempts, &w.LockedUntil, &w.UserID, &w.LinkedAt, &w.CreatedAt, &w.UpdatedAt}
}

const leadColumns = `id, person_id, channel, external_id, first_name, last_name, username, locale, blocked, created_at, updated_at`

func (l *leadRow) fields() []any {
	return []any{&l.ID, &l.PersonID, &l.Channel, &l.ExternalID, &l.FirstName, &l.LastName, &l.Username, &l.Locale,
		&l.Blocked, &l.CreatedAt, &l.UpdatedAt}
}

const apiKeyColumns = `id, name, prefix, hash, created_at, revoked_at, last_used_at, failures, window_start`

func (k *apiKeyRow) fields() []any {
	return []any{&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt, &k.Failures, &k.WindowStart}
}

func (r repo) webUser(ctx context.Context, db sqlConn, where string, args ...any) (pairing.WebUser, error) {
	var row webUserRow
	if err := r.queryOne(ctx, db, `SELECT `+webUserColumns+` FROM web_users WHERE `+where+` LIMIT 1`, args, row.fields()...); err != nil {
		return pairing.WebUser{}, err
	}
	return row.webUser(), nil
}

func (r repo) LeadByID(ctx context.Context, id int64) (pairing.Lead, error) {
	var row leadRow
	if err := r.queryOne(ctx, r.rq, `SELECT `+leadColumns+` FROM leads WHERE id = ?`, []any{id}, row.fields()...); err != nil {
		return pairing.Lead{}, err
	}
	return row.lead(), nil
}

func (r repo) APIKeyByHash(ctx context.Context, hash []byte) (pairing.APIKey, error) {
	var row apiKeyRow
	if err := r.queryOne(ctx, r.rq, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, []any{hash}, row.fields()...); err != nil {
		return pairing.APIKey{}, err
	}
	return row.key(), nil
}

func (r repo) AddAudit(ctx context.Context, e pairing.AuditEvent) error {
	_, err := r.execSQL(ctx, `INSERT INTO audit_events (at, action, outcome, key_id, web_user_id, person_id, user_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, us(e.At), e.Action, e.Outcome, e.KeyID, e.WebUserID, e.PersonID, e.UserID, e.Detail)
	return err
}
