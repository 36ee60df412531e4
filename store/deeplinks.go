package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// linkTokenRow is a deep-link token (migration 0002).
type linkTokenRow struct {
	ID          int64  `gorm:"column:id;primaryKey"`
	Hash        []byte `gorm:"column:hash"`
	Channel     string `gorm:"column:channel"`
	UserID      string `gorm:"column:user_id"`
	DisplayName string `gorm:"column:display_name"`
	KeyID       int64  `gorm:"column:key_id"`
	ExpiresAt   int64  `gorm:"column:expires_at"`
	UsedAt      int64  `gorm:"column:used_at"`
	LeadID      int64  `gorm:"column:lead_id"`
	CreatedAt   int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (linkTokenRow) TableName() string { return "link_tokens" }

func (r linkTokenRow) token() pairing.LinkToken {
	return pairing.LinkToken{
		ID: r.ID, Hash: r.Hash, Channel: r.Channel, UserID: r.UserID, DisplayName: r.DisplayName, KeyID: r.KeyID,
		ExpiresAt: tm(r.ExpiresAt), UsedAt: tm(r.UsedAt), LeadID: r.LeadID, CreatedAt: tm(r.CreatedAt),
	}
}

func (r repo) CreateLinkToken(ctx context.Context, t pairing.LinkToken) error {
	row := linkTokenRow{
		Hash: t.Hash, Channel: t.Channel, UserID: t.UserID, DisplayName: t.DisplayName, KeyID: t.KeyID,
		ExpiresAt: us(t.ExpiresAt), UsedAt: us(t.UsedAt), LeadID: t.LeadID, CreatedAt: us(t.CreatedAt),
	}
	return translate(r.w.WithContext(ctx).Create(&row).Error)
}

func (r repo) LinkTokenByHash(ctx context.Context, hash []byte) (pairing.LinkToken, error) {
	var row linkTokenRow
	if err := take(ctx, r.r, &row, "hash = ?", hash); err != nil {
		return pairing.LinkToken{}, err
	}
	return row.token(), nil
}

// SpendLinkToken is one conditional UPDATE: of concurrent spends, across
// connections and instances, exactly one changes the row.
func (r repo) SpendLinkToken(ctx context.Context, id, leadID int64, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE link_tokens SET used_at = ?, lead_id = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`,
		us(now), leadID, id, us(now))
	return n == 1, err
}
