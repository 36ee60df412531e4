package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// linkTokenRow is a deep-link token (migration 0002).
type linkTokenRow struct {
	ID          int64  `db:"id"`
	Hash        []byte `db:"hash"`
	Channel     string `db:"channel"`
	UserID      string `db:"user_id"`
	DisplayName string `db:"display_name"`
	KeyID       int64  `db:"key_id"`
	ExpiresAt   int64  `db:"expires_at"`
	UsedAt      int64  `db:"used_at"`
	LeadID      int64  `db:"lead_id"`
	CreatedAt   int64  `db:"created_at"`
}

func (r linkTokenRow) token() pairing.LinkToken {
	return pairing.LinkToken{
		ID: r.ID, Hash: r.Hash, Channel: r.Channel, UserID: r.UserID, DisplayName: r.DisplayName, KeyID: r.KeyID,
		ExpiresAt: tm(r.ExpiresAt), UsedAt: tm(r.UsedAt), LeadID: r.LeadID, CreatedAt: tm(r.CreatedAt),
	}
}

func (r repo) CreateLinkToken(ctx context.Context, t pairing.LinkToken) error {
	_, err := r.exec(ctx, `INSERT INTO link_tokens (hash, channel, user_id, display_name, key_id, expires_at, used_at, lead_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.Channel, t.UserID, t.DisplayName, t.KeyID,
		us(t.ExpiresAt), us(t.UsedAt), t.LeadID, us(t.CreatedAt))
	return err
}

func (r repo) LinkTokenByHash(ctx context.Context, hash []byte) (pairing.LinkToken, error) {
	return getConverted(ctx, r, r.r, linkTokenRow.token, `SELECT `+columnsOf[linkTokenRow]("")+` FROM link_tokens WHERE hash = ?`, hash)
}

// SpendLinkToken is one conditional UPDATE: of concurrent spends, across
// connections and instances, exactly one changes the row.
func (r repo) SpendLinkToken(ctx context.Context, id, leadID int64, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE link_tokens SET used_at = ?, lead_id = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`,
		us(now), leadID, id, us(now))
	return n == 1, err
}
