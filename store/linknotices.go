package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// linkNoticeRow is a link notice's unlink token (migration 0012).
type linkNoticeRow struct {
	ID        int64  `db:"id"`
	Hash      []byte `db:"hash"`
	LeadID    int64  `db:"lead_id"`
	UserID    string `db:"user_id"`
	ExpiresAt int64  `db:"expires_at"`
	UsedAt    int64  `db:"used_at"`
	CreatedAt int64  `db:"created_at"`
}

func (r linkNoticeRow) notice() pairing.LinkNotice {
	return pairing.LinkNotice{ID: r.ID, Hash: r.Hash, LeadID: r.LeadID, UserID: r.UserID,
		ExpiresAt: tm(r.ExpiresAt), UsedAt: tm(r.UsedAt), CreatedAt: tm(r.CreatedAt)}
}

func (r repo) CreateLinkNotice(ctx context.Context, n pairing.LinkNotice) error {
	_, err := r.exec(ctx, `INSERT INTO link_notices (hash, lead_id, user_id, expires_at, used_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, n.Hash, n.LeadID, n.UserID, us(n.ExpiresAt), us(n.UsedAt), us(n.CreatedAt))
	return err
}

func (r repo) LinkNoticeByHash(ctx context.Context, hash []byte) (pairing.LinkNotice, error) {
	return getConverted(ctx, r, r.r, linkNoticeRow.notice, `SELECT `+columnsOf[linkNoticeRow]("")+` FROM link_notices WHERE hash = ?`, hash)
}

// SpendLinkNotice is one conditional UPDATE: of two presses, on any
// instances, exactly one changes the row.
func (r repo) SpendLinkNotice(ctx context.Context, id int64, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE link_notices SET used_at = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`, us(now), id, us(now))
	return n == 1, err
}

// UseLoginProof records a one-tap sign-in's proof; false when it was
// recorded before (the same signed data, opened again).
func (r repo) UseLoginProof(ctx context.Context, hash []byte, expiresAt time.Time) (bool, error) {
	n, err := r.exec(ctx, `INSERT INTO one_tap_uses (hash, expires_at) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING`, hash, us(expiresAt))
	return n == 1, err
}
