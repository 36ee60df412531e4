package store

import (
	"context"
	"errors"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// errLeadExists rolls back a CreateLead that lost the race for its key.
var errLeadExists = errors.New("lead exists")

func (r repo) LeadByKey(ctx context.Context, key pairing.LeadKey) (pairing.Lead, error) {
	return r.leadByKey(ctx, r.r, key)
}

func (r repo) leadByKey(ctx context.Context, db conn, key pairing.LeadKey) (pairing.Lead, error) {
	return getConverted(ctx, r, db, leadRow.lead, `SELECT `+columnsOf[leadRow]("")+` FROM leads WHERE channel = ? AND external_id = ?`,
		key.Channel, key.ExternalID)
}

func (r repo) LeadByID(ctx context.Context, id int64) (pairing.Lead, error) {
	return getConverted(ctx, r, r.r, leadRow.lead, `SELECT `+columnsOf[leadRow]("")+` FROM leads WHERE id = ?`, id)
}

// CreateLead inserts person, lead and web_users row together (in a
// savepoint when already inside a transaction). Two callers racing for the
// same key both get the one lead: the loser's insert does nothing (ON
// CONFLICT DO NOTHING waits for the winner on PostgreSQL) and its person
// row is rolled back.
func (r repo) CreateLead(ctx context.Context, key pairing.LeadKey, p pairing.Profile, now time.Time) (pairing.Lead, error) {
	if l, err := r.leadByKey(ctx, r.w, key); !errors.Is(err, pairing.ErrNotFound) {
		return l, err
	}
	var lr leadRow
	err := r.atomic(ctx, func(tx repo) error {
		var personID int64
		if err := tx.queryOne(ctx, tx.w, `INSERT INTO persons (created_at) VALUES (?) RETURNING id`, []any{us(now)}, &personID); err != nil {
			return err
		}
		var err error
		lr, err = getRow[leadRow](ctx, tx, tx.w, `INSERT INTO leads
			(person_id, channel, external_id, first_name, last_name, username, locale, blocked, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, external_id) DO NOTHING
			RETURNING `+columnsOf[leadRow](""),
			personID, key.Channel, key.ExternalID, p.FirstName, p.LastName, p.Username, p.Locale, false, us(now), us(now))
		if errors.Is(err, pairing.ErrNotFound) {
			return errLeadExists
		}
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO web_users (person_id, lead_id, created_at, updated_at) VALUES (?, ?, ?, ?)`,
			personID, lr.ID, us(now), us(now))
		return err
	})
	if errors.Is(err, errLeadExists) {
		return r.leadByKey(ctx, r.w, key)
	}
	if err != nil {
		return pairing.Lead{}, err
	}
	return lr.lead(), nil
}

func (r repo) UpdateLeadProfile(ctx context.Context, id int64, p pairing.Profile, now time.Time) error {
	n, err := r.exec(ctx, `UPDATE leads SET first_name = ?, last_name = ?, username = ?, locale = ?, updated_at = ? WHERE id = ?`,
		p.FirstName, p.LastName, p.Username, p.Locale, us(now), id)
	if err == nil && n == 0 {
		return pairing.ErrNotFound
	}
	return err
}

func (r repo) SetLeadBlocked(ctx context.Context, id int64, blocked bool, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE leads SET blocked = ?, updated_at = ? WHERE id = ? AND blocked <> ?`, blocked, us(now), id, blocked)
	if err != nil || n == 1 {
		return n == 1, err
	}
	_, err = r.LeadByID(ctx, id)
	return false, err
}

func (r repo) LeadsOfPerson(ctx context.Context, personID int64) ([]pairing.Lead, error) {
	rows, err := listRows[leadRow](ctx, r, r.r, `SELECT `+columnsOf[leadRow]("")+` FROM leads WHERE person_id = ? ORDER BY id`, personID)
	return converted(rows, err, leadRow.lead)
}

// MergePerson moves the leads, then deletes the old person; its web_users
// row and that row's grants go with it (ON DELETE CASCADE).
func (r repo) MergePerson(ctx context.Context, from, to int64, now time.Time) error {
	if from == to {
		return nil
	}
	if _, err := r.exec(ctx, `UPDATE leads SET person_id = ?, updated_at = ? WHERE person_id = ?`, to, us(now), from); err != nil {
		return err
	}
	if _, err := r.exec(ctx, `DELETE FROM web_users WHERE person_id = ?`, from); err != nil {
		return err
	}
	_, err := r.exec(ctx, `DELETE FROM persons WHERE id = ?`, from)
	return err
}

// Persons counts the persons (for tests and the CLI).
func (s *Store) Persons(ctx context.Context) (int64, error) {
	var n int64
	err := s.queryOne(ctx, s.r, `SELECT COUNT(*) FROM persons`, nil, &n)
	return n, err
}
