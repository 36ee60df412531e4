package store

import (
	"context"
	"errors"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// SetThreadOwner records the app that owns a Messenger thread (handover
// protocol); "" forgets it. Every instance reads the same table, so an
// instance that did not see the handover event still knows the owner.
func (s *Store) SetThreadOwner(ctx context.Context, key pairing.LeadKey, appID string) error {
	if appID == "" {
		_, err := s.exec(ctx, `DELETE FROM messenger_threads WHERE channel = ? AND external_id = ?`, key.Channel, key.ExternalID)
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO messenger_threads (channel, external_id, owner_app_id, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (channel, external_id) DO UPDATE SET owner_app_id = excluded.owner_app_id, updated_at = excluded.updated_at`,
		key.Channel, key.ExternalID, appID, time.Now().UnixMicro())
	return err
}

// ThreadOwner returns the recorded owner of a Messenger thread, "" when
// none is known.
func (s *Store) ThreadOwner(ctx context.Context, key pairing.LeadKey) (string, error) {
	var owner string
	err := s.queryOne(ctx, s.r, `SELECT owner_app_id FROM messenger_threads WHERE channel = ? AND external_id = ?`,
		[]any{key.Channel, key.ExternalID}, &owner)
	if errors.Is(err, pairing.ErrNotFound) {
		return "", nil
	}
	return owner, err
}

// SetPageRole records a Messenger Page's role from an app_roles event.
func (s *Store) SetPageRole(ctx context.Context, channel, role string) error {
	_, err := s.exec(ctx, `INSERT INTO messenger_pages (channel, role, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (channel) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at`,
		channel, role, time.Now().UnixMicro())
	return err
}

// PageRole returns a Messenger Page's recorded role, "" when none.
func (s *Store) PageRole(ctx context.Context, channel string) (string, error) {
	var role string
	err := s.queryOne(ctx, s.r, `SELECT role FROM messenger_pages WHERE channel = ?`, []any{channel}, &role)
	if errors.Is(err, pairing.ErrNotFound) {
		return "", nil
	}
	return role, err
}
