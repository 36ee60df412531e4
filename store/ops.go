package store

import (
	"context"
	"errors"

	"github.com/pairingd/pairingd/pairing"
)

// ServerSecret returns the server secret kept in the database, creating it
// with gen the first time. Instances starting together agree on one: the
// insert does nothing when a row exists, and everyone reads the row.
func (s *Store) ServerSecret(ctx context.Context, gen func() ([]byte, error)) ([]byte, error) {
	if v, err := s.setting(ctx, "server_secret"); !errors.Is(err, pairing.ErrNotFound) {
		return v, err
	}
	fresh, err := gen()
	if err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, "server_secret", fresh); err != nil {
		return nil, err
	}
	return s.setting(ctx, "server_secret")
}

func (s *Store) setting(ctx context.Context, name string) ([]byte, error) {
	var rows []struct {
		Value []byte `gorm:"column:value"`
	}
	if err := s.writer.WithContext(ctx).Raw(`SELECT value FROM settings WHERE name = ?`, name).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	if len(rows) == 0 {
		return nil, pairing.ErrNotFound
	}
	return rows[0].Value, nil
}

// SiteEventsAfter lists site events with id > after, oldest first.
func (s *Store) SiteEventsAfter(ctx context.Context, after int64, limit int) ([]pairing.SiteEvent, error) {
	var rows []siteEventRow
	if err := s.reader.WithContext(ctx).Where("id > ?", after).Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]pairing.SiteEvent, len(rows))
	for i, r := range rows {
		out[i] = pairing.SiteEvent{ID: r.ID, Type: r.Type, UserID: r.UserID, Payload: []byte(r.Payload), CreatedAt: tm(r.CreatedAt)}
	}
	return out, nil
}

// AuditEvents lists the newest audit events, newest first.
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]pairing.AuditEvent, error) {
	var rows []auditRow
	if err := s.reader.WithContext(ctx).Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]pairing.AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = pairing.AuditEvent{
			At: tm(r.At), Action: r.Action, Outcome: r.Outcome, KeyID: r.KeyID, WebUserID: r.WebUserID,
			PersonID: r.PersonID, UserID: r.UserID, Detail: r.Detail,
		}
	}
	return out, nil
}

// Persons counts the persons (for tests and the CLI).
func (s *Store) Persons(ctx context.Context) (int64, error) {
	var n int64
	err := s.reader.WithContext(ctx).Model(&personRow{}).Count(&n).Error
	return n, translate(err)
}
