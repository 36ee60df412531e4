package store

import (
	"context"
	"strconv"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func (r repo) CreateGrant(ctx context.Context, g pairing.GrantRecord) error {
	// Plain SQL: this runs on every register and conflict answer.
	_, err := r.execSQL(ctx, `INSERT INTO grants (kind, hash, web_user_id, lead_id, user_id, expires_at, used_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, string(g.Kind), g.Hash, g.WebUserID, g.LeadID, g.UserID,
		us(g.ExpiresAt), us(g.UsedAt), us(g.CreatedAt))
	return err
}

func (r repo) GrantByHash(ctx context.Context, hash []byte) (pairing.GrantRecord, error) {
	var row grantRow
	if err := take(ctx, r.r, &row, "hash = ?", hash); err != nil {
		return pairing.GrantRecord{}, err
	}
	return row.grant(), nil
}

func (r repo) SpendGrant(ctx context.Context, id int64, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE grants SET used_at = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`, us(now), id, us(now))
	return n == 1, err
}

func (r repo) CreateAPIKey(ctx context.Context, k pairing.APIKey) (pairing.APIKey, error) {
	row := apiKeyRow{Name: k.Name, Prefix: k.Prefix, Hash: k.Hash, CreatedAt: us(k.CreatedAt)}
	if err := r.w.WithContext(ctx).Create(&row).Error; err != nil {
		return pairing.APIKey{}, translate(err)
	}
	return row.key(), nil
}

func (r repo) ListAPIKeys(ctx context.Context) ([]pairing.APIKey, error) {
	var rows []apiKeyRow
	if err := r.r.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]pairing.APIKey, len(rows))
	for i, row := range rows {
		out[i] = row.key()
	}
	return out, nil
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
	if err := r.queryOne(ctx, r.rq, `SELECT failures, window_start FROM api_keys WHERE id = ?`, []any{keyID}, &failures, &windowStart); err != nil {
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
	var out []struct {
		Failures int `gorm:"column:failures"`
	}
	start := us(now.Add(-window))
	err := r.w.WithContext(ctx).Raw(`UPDATE api_keys SET
		failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END,
		window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END
		WHERE id = ? RETURNING failures`, start, start, us(now), keyID).Scan(&out).Error
	if err != nil {
		return 0, translate(err)
	}
	if len(out) == 0 {
		return 0, pairing.ErrNotFound
	}
	return out[0].Failures, nil
}

// ReserveKeyFailure is one conditional UPDATE: it changes the row only
// while the window has room (or has expired), so concurrent reservations
// across instances never exceed the budget.
func (r repo) ReserveKeyFailure(ctx context.Context, keyID int64, now time.Time, window time.Duration, budget int) (bool, error) {
	start := us(now.Add(-window))
	n, err := r.execSQL(ctx, `UPDATE api_keys SET
		failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END,
		window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END
		WHERE id = ? AND (window_start <= ? OR failures < ?)`, start, start, us(now), keyID, start, budget)
	return n == 1, err
}

func (r repo) RefundKeyFailure(ctx context.Context, keyID int64, now time.Time, window time.Duration) error {
	_, err := r.execSQL(ctx, `UPDATE api_keys SET failures = failures - 1
		WHERE id = ? AND failures > 0 AND window_start > ?`, keyID, us(now.Add(-window)))
	return err
}

func (r repo) AddSiteEvent(ctx context.Context, e pairing.SiteEvent) error {
	payload := string(e.Payload)
	if payload == "" {
		payload = "{}"
	}
	row := siteEventRow{Type: e.Type, UserID: e.UserID, Payload: payload, CreatedAt: us(e.CreatedAt)}
	return translate(r.w.WithContext(ctx).Create(&row).Error)
}
