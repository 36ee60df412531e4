package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/pairingd/pairingd/pairing"
)

// errLeadExists rolls back a CreateLead that lost the race for its key.
var errLeadExists = errors.New("lead exists")

// exec runs a write and returns the affected row count.
func (r repo) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res := r.w.WithContext(ctx).Exec(query, args...)
	return res.RowsAffected, translate(res.Error)
}

// take reads one row into dst from db; ErrNotFound when there is none.
func take(ctx context.Context, db *gorm.DB, dst any, where string, args ...any) error {
	return translate(db.WithContext(ctx).Where(where, args...).Take(dst).Error)
}

func (r repo) LeadByKey(ctx context.Context, key pairing.LeadKey) (pairing.Lead, error) {
	return leadByKey(ctx, r.r, key)
}

func leadByKey(ctx context.Context, db *gorm.DB, key pairing.LeadKey) (pairing.Lead, error) {
	var row leadRow
	if err := take(ctx, db, &row, "channel = ? AND external_id = ?", key.Channel, key.ExternalID); err != nil {
		return pairing.Lead{}, err
	}
	return row.lead(), nil
}

// CreateLead inserts person, lead and web_users row together (in a
// savepoint when already inside a transaction). Two callers racing for the
// same key both get the one lead: the loser's insert does nothing (ON
// CONFLICT DO NOTHING waits for the winner on PostgreSQL) and its person
// row is rolled back.
func (r repo) CreateLead(ctx context.Context, key pairing.LeadKey, p pairing.Profile, now time.Time) (pairing.Lead, error) {
	if l, err := leadByKey(ctx, r.w, key); !errors.Is(err, pairing.ErrNotFound) {
		return l, err
	}
	var lr leadRow
	err := r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		person := personRow{CreatedAt: us(now)}
		if err := tx.Create(&person).Error; err != nil {
			return err
		}
		lr = leadRow{
			PersonID: person.ID, Channel: key.Channel, ExternalID: key.ExternalID,
			FirstName: p.FirstName, LastName: p.LastName, Username: p.Username, Locale: p.Locale,
			CreatedAt: us(now), UpdatedAt: us(now),
		}
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "channel"}, {Name: "external_id"}}, DoNothing: true}).Create(&lr)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errLeadExists
		}
		wu := webUserRow{PersonID: person.ID, LeadID: lr.ID, CreatedAt: us(now), UpdatedAt: us(now)}
		return tx.Omit("UserID").Create(&wu).Error
	})
	if errors.Is(err, errLeadExists) {
		return leadByKey(ctx, r.w, key)
	}
	if err != nil {
		return pairing.Lead{}, translate(err)
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
	var rows []leadRow
	if err := r.r.WithContext(ctx).Where("person_id = ?", personID).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]pairing.Lead, len(rows))
	for i, row := range rows {
		out[i] = row.lead()
	}
	return out, nil
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
