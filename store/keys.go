package store

import (
	"context"
	"strconv"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func (r repo) CreateAPIKey(ctx context.Context, k pairing.APIKey) (pairing.APIKey, error) {
	return getConverted(ctx, r, r.w, apiKeyRow.key, `INSERT INTO api_keys (name, prefix, hash, created_at) VALUES (?, ?, ?, ?)
		RETURNING `+columnsOf[apiKeyRow](""), k.Name, k.Prefix, k.Hash, us(k.CreatedAt))
}

func (r repo) ListAPIKeys(ctx context.Context) ([]pairing.APIKey, error) {
	rows, err := listRows[apiKeyRow](ctx, r, r.r, `SELECT `+columnsOf[apiKeyRow]("")+` FROM api_keys ORDER BY id`)
	return converted(rows, err, apiKeyRow.key)
}

func (r repo) APIKeyByHash(ctx context.Context, hash []byte) (pairing.APIKey, error) {
	return getConverted(ctx, r, r.r, apiKeyRow.key, `SELECT `+columnsOf[apiKeyRow]("")+` FROM api_keys WHERE hash = ?`, hash)
}

// RevokeAPIKey revokes the active key with that id, or every active key
// with that name.
func (r repo) RevokeAPIKey(ctx context.Context, idOrName string, now time.Time) error {
	id, err := strconv.ParseInt(idOrName, 10, 64)
	if err != nil {
		id = -1
	}
	n, err := r.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE revoked_at = 0 AND (id = ? OR name = ?)`, us(now), id, idOrName)
	if err == nil && n == 0 {
		return pairing.ErrNotFound
	}
	return err
}

func (r repo) KeyFailures(ctx context.Context, keyID int64, now time.Time, window time.Duration) (int, error) {
	var failures int
	var windowStart int64
	if err := r.queryOne(ctx, r.r, `SELECT failures, window_start FROM api_keys WHERE id = ?`, []any{keyID}, &failures, &windowStart); err != nil {
		return 0, err
	}
	if windowStart <= us(now.Add(-window)) {
		return 0, nil
	}
	return failures, nil
}

// AddKeyFailure counts in one UPDATE ... RETURNING, so concurrent failures
// of one key across instances each count once.
func (r repo) AddKeyFailure(ctx context.Context, keyID int64, now time.Time, window time.Duration) (int, error) {
	var failures int
	start := us(now.Add(-window))
	err := r.queryOne(ctx, r.w, `UPDATE api_keys SET
		failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END,
		window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END
		WHERE id = ? RETURNING failures`, []any{start, start, us(now), keyID}, &failures)
	return failures, err
}

// ChargeKeyFailure is one conditional UPDATE: it changes the row only
// while the window has room (or has expired). A concurrent charge of the
// same key waits for the row (PostgreSQL re-checks the WHERE on the
// committed row; SQLite has one writer), so charges across instances never
// exceed the budget.
func (r repo) ChargeKeyFailure(ctx context.Context, keyID int64, now time.Time, window time.Duration, budget int) (bool, error) {
	start := us(now.Add(-window))
	n, err := r.exec(ctx, `UPDATE api_keys SET
		failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END,
		window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END
		WHERE id = ? AND (window_start <= ? OR failures < ?)`, start, start, us(now), keyID, start, budget)
	return n == 1, err
}
