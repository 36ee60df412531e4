package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// webUser reads the web_users row that matches where.
func (r repo) webUser(ctx context.Context, db conn, where string, args ...any) (pairing.WebUser, error) {
	row, err := getRow[webUserRow](ctx, r, db, `SELECT `+columnsOf[webUserRow]("")+` FROM web_users WHERE `+where+` LIMIT 1`, args...)
	if err != nil {
		return pairing.WebUser{}, err
	}
	return row.webUser(), nil
}

func (r repo) WebUserByID(ctx context.Context, id int64) (pairing.WebUser, error) {
	return r.webUser(ctx, r.r, "id = ?", id)
}

func (r repo) WebUserByPerson(ctx context.Context, personID int64) (pairing.WebUser, error) {
	return r.webUser(ctx, r.r, "person_id = ?", personID)
}

func (r repo) WebUserByUserID(ctx context.Context, userID string) (pairing.WebUser, error) {
	if userID == "" {
		return pairing.WebUser{}, pairing.ErrNotFound
	}
	return r.webUser(ctx, r.r, "user_id = ?", userID)
}

// LinkOfUser reads the linked row and its person's leads in one query (a
// round trip fewer than the two reads on PostgreSQL), and only the columns
// a link shows: each further column, and an ORDER BY that SQLite runs as a
// second pass, cost more than the lookups themselves on this hot read
// (docs/performance.md). The leads are sorted here instead. Only a row with
// no lead at all, which no flow leaves behind, needs a second read.
func (r repo) LinkOfUser(ctx context.Context, userID string) (pairing.WebUser, []pairing.Lead, error) {
	if userID == "" {
		return pairing.WebUser{}, nil, pairing.ErrNotFound
	}
	rows, err := listScanned(ctx, r, r.r, linkFields, linkQuery, userID)
	if err != nil {
		return pairing.WebUser{}, nil, err
	}
	if len(rows) == 0 {
		wu, err := r.WebUserByUserID(ctx, userID)
		return wu, nil, err
	}
	slices.SortFunc(rows, func(a, b linkRow) int { return cmp.Compare(a.LeadID, b.LeadID) })
	leads := make([]pairing.Lead, len(rows))
	for i, row := range rows {
		leads[i] = pairing.Lead{
			ID: row.LeadID, PersonID: row.PersonID, Channel: row.Channel, ExternalID: row.ExtID, Blocked: row.Blocked,
			Profile: pairing.Profile{FirstName: row.FirstName, LastName: row.LastName, Username: row.Username, Locale: row.Locale},
		}
	}
	wu := pairing.WebUser{ID: rows[0].ID, UserID: userID, PersonID: rows[0].PersonID, LinkedAt: tm(rows[0].LinkedAt)}
	return wu, leads, nil
}

// linkRow is one lead of a link, as LinkOfUser reads it.
type linkRow struct {
	ID        int64
	PersonID  int64
	LinkedAt  int64
	LeadID    int64
	Channel   string
	ExtID     string
	FirstName string
	LastName  string
	Username  string
	Locale    string
	Blocked   bool
}

const linkQuery = `SELECT w.id, w.person_id, w.linked_at, l.id, l.channel, l.external_id, l.first_name, l.last_name, l.username, l.locale, l.blocked
	FROM web_users w JOIN leads l ON l.person_id = w.person_id WHERE w.user_id = ?`

func linkFields(r *linkRow) []any {
	return []any{&r.ID, &r.PersonID, &r.LinkedAt, &r.LeadID, &r.Channel, &r.ExtID, &r.FirstName, &r.LastName, &r.Username, &r.Locale, &r.Blocked}
}

// exists tells ErrNotFound apart from "the condition did not hold".
func (r repo) exists(ctx context.Context, id int64) error {
	_, err := r.webUser(ctx, r.w, "id = ?", id)
	return err
}

func (r repo) SetCredential(ctx context.Context, id int64, c pairing.Credential, now time.Time) error {
	n, err := r.exec(ctx, `UPDATE web_users SET buid_hash = ?, pin_hash = ?, pin_issued_at = ?, pin_expires_at = ?,
		magic_expires_at = ?, lead_id = ?, pin_used_at = 0, updated_at = ? WHERE id = ?`,
		c.BUIDHash, c.PINHash, us(c.IssuedAt), us(c.ExpiresAt), us(c.MagicExpiresAt), c.LeadID, us(now), id)
	if err == nil && n == 0 {
		return pairing.ErrNotFound
	}
	return err
}

func (r repo) ClaimIssue(ctx context.Context, id int64, now time.Time, minInterval time.Duration) (bool, error) {
	n, err := r.exec(ctx, `UPDATE web_users SET pin_issued_at = ? WHERE id = ? AND pin_issued_at <= ?`,
		us(now), id, us(now.Add(-minInterval)))
	if err != nil || n == 1 {
		return n == 1, err
	}
	return false, r.exists(ctx, id)
}

// SwapPINAttempts writes the wrong-PIN state the service decided, only if
// the row still holds the state it decided from: concurrent writers of the
// counters change it one at a time, and each loser decides again.
func (r repo) SwapPINAttempts(ctx context.Context, id int64, old, next pairing.PINAttempts, now time.Time) (pairing.PINAttempts, bool, error) {
	n, err := r.exec(ctx, `UPDATE web_users SET failed_attempts = ?, locked_until = ?, updated_at = ?
		WHERE id = ? AND failed_attempts = ? AND locked_until = ?`,
		next.Failed, us(next.LockedUntil), us(now), id, old.Failed, us(old.LockedUntil))
	if err != nil {
		return pairing.PINAttempts{}, false, err
	}
	if n == 1 {
		return next, true, nil
	}
	w, err := r.webUser(ctx, r.w, "id = ?", id)
	if err != nil {
		return pairing.PINAttempts{}, false, err
	}
	return pairing.PINAttempts{Failed: w.FailedAttempts, LockedUntil: w.LockedUntil}, false, nil
}

// SpendCredential is the one conditional UPDATE that spends a PIN (or a
// magic link): exactly one request can change the row. The key's guard is
// a subquery that reads api_keys without locking it. On PostgreSQL the
// statement also returns the lead (UPDATE ... FROM, which does not lock
// the lead's row), saving a round trip on every authorize; SQLite, where
// RETURNING cannot name another table and a read is an in-process call,
// reads it after.
func (r repo) SpendCredential(ctx context.Context, id int64, buidHash, pinHash []byte, now time.Time, guard pairing.KeyGuard) (pairing.Spent, bool, error) {
	pg := r.driver == Postgres
	q := `UPDATE web_users SET pin_used_at = ?, failed_attempts = 0, locked_until = 0, updated_at = ?`
	if pg {
		q += ` FROM leads l WHERE l.id = web_users.lead_id AND web_users.id = ? AND `
	} else {
		q += ` WHERE id = ? AND `
	}
	q += `buid_hash = ? AND pin_used_at = 0 AND locked_until <= ? AND `
	args := []any{us(now), us(now), id, buidHash, us(now)}
	if guard.KeyID != 0 {
		q += `NOT EXISTS (SELECT 1 FROM api_keys WHERE id = ? AND window_start > ? AND failures >= ?) AND `
		args = append(args, guard.KeyID, us(guard.WindowStart), guard.Budget)
	}
	if pinHash == nil {
		q += `magic_expires_at > ?`
		args = append(args, us(now))
	} else {
		q += `pin_hash = ? AND pin_expires_at > ?`
		args = append(args, pinHash, us(now))
	}
	var row spentRow
	var err error
	if pg {
		err = r.queryOne(ctx, r.w, q+` RETURNING `+columnsOf[webUserRow]("web_users.")+`, `+columnsOf[leadRow]("l."), args, spentFields(&row)...)
	} else {
		row.w, err = getRow[webUserRow](ctx, r, r.w, q+` RETURNING `+columnsOf[webUserRow](""), args...)
		if err == nil {
			row.l, err = getRow[leadRow](ctx, r, r.w, `SELECT `+columnsOf[leadRow]("")+` FROM leads WHERE id = ?`, row.w.LeadID)
		}
	}
	switch {
	case errors.Is(err, pairing.ErrNotFound) && row.w.ID == 0:
		return pairing.Spent{}, false, nil
	case err != nil:
		return pairing.Spent{}, false, err
	}
	return pairing.Spent{WebUser: row.w.webUser(), Lead: row.l.lead()}, true, nil
}

// spentRow is a spent web_users row and its lead.
type spentRow struct {
	w webUserRow
	l leadRow
}

func spentFields(r *spentRow) []any { return append(fieldsOf(&r.w), fieldsOf(&r.l)...) }

// SetLink fills an empty link. It runs in a savepoint so that a unique
// violation on PostgreSQL leaves the surrounding transaction usable.
func (r repo) SetLink(ctx context.Context, id int64, userID string, now time.Time) error {
	var n int64
	err := r.atomic(ctx, func(tx repo) error {
		var err error
		n, err = tx.exec(ctx, `UPDATE web_users SET user_id = ?, linked_at = ?, updated_at = ? WHERE id = ? AND user_id IS NULL`,
			userID, us(now), us(now), id)
		return err
	})
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	if err := r.exists(ctx, id); err != nil {
		return err
	}
	return pairing.ErrRaced
}

func (r repo) ClearLink(ctx context.Context, id int64, userID string, now time.Time) error {
	n, err := r.exec(ctx, `UPDATE web_users SET user_id = NULL, linked_at = 0, updated_at = ? WHERE id = ? AND user_id = ?`, us(now), id, userID)
	if err != nil || n == 1 {
		return err
	}
	if _, err := r.webUser(ctx, r.w, "id = ?", id); err != nil {
		return err
	}
	return fmt.Errorf("%w: the link changed meanwhile", pairing.ErrRaced)
}

func (r repo) ListLinks(ctx context.Context, afterID int64, limit int) ([]pairing.WebUser, error) {
	rows, err := listRows[webUserRow](ctx, r, r.r, `SELECT `+columnsOf[webUserRow]("")+` FROM web_users
		WHERE user_id IS NOT NULL AND id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]pairing.WebUser, len(rows))
	for i, row := range rows {
		out[i] = row.webUser()
	}
	return out, nil
}
