package store

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// CreateGrant stores the grant and its answer's audit row. PostgreSQL
// runs both inserts as one statement (a data-modifying WITH), a round trip
// fewer on the register path; SQLite, which has no such statement and
// where a statement is an in-process call, runs two.
func (r repo) CreateGrant(ctx context.Context, g pairing.GrantRecord, audit pairing.AuditEvent) error {
	args := []any{string(g.Kind), g.Hash, g.WebUserID, g.LeadID, g.UserID, us(g.ExpiresAt), us(g.UsedAt), us(g.CreatedAt)}
	if r.driver == Postgres {
		return r.execLater(ctx, `WITH grant_row AS (`+insertGrant+`) `+insertAudit, append(args, auditArgs(audit)...)...)
	}
	if _, err := r.exec(ctx, insertGrant, args...); err != nil {
		return err
	}
	return r.AddAudit(ctx, audit)
}

const insertGrant = `INSERT INTO grants (kind, hash, web_user_id, lead_id, user_id, expires_at, used_at, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

func (r repo) GrantByHash(ctx context.Context, hash []byte) (pairing.GrantRecord, error) {
	row, err := getRow[grantRow](ctx, r, r.r, `SELECT `+columnsOf[grantRow]("")+` FROM grants WHERE hash = ?`, hash)
	if err != nil {
		return pairing.GrantRecord{}, err
	}
	return row.grant(), nil
}

func (r repo) SpendGrant(ctx context.Context, id int64, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE grants SET used_at = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`, us(now), id, us(now))
	return n == 1, err
}
