package store

import (
	"context"
	"time"
)

// PruneSpent deletes what has served its purpose: grants, deep-link
// tokens, link notices' unlink tokens and used one-tap proofs that expired before `expired` (used or not: either way they can
// never be spent again), and notifications created before `messages`
// whose deliveries have all finished (delivered, failed or skipped; their
// deliveries go with them). It returns how many rows went.
func (s *Store) PruneSpent(ctx context.Context, expired, messages time.Time) (int64, error) {
	var total int64
	for _, q := range []struct {
		sql string
		at  time.Time
	}{
		{`DELETE FROM grants WHERE expires_at < ?`, expired},
		{`DELETE FROM link_tokens WHERE expires_at < ?`, expired},
		{`DELETE FROM link_notices WHERE expires_at < ?`, expired},
		{`DELETE FROM one_tap_uses WHERE expires_at < ?`, expired},
		{`DELETE FROM outbox_messages WHERE created_at < ? AND NOT EXISTS (
			SELECT 1 FROM outbox_deliveries d WHERE d.message_id = outbox_messages.id AND d.finished_at = 0)`, messages},
	} {
		n, err := s.exec(ctx, q.sql, us(q.at))
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// IntegrityCheck runs SQLite's PRAGMA integrity_check and returns its
// verdict ("ok" when the file is sound); on PostgreSQL it returns "ok"
// once the database answers.
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	if s.driver != SQLite {
		return "ok", s.ping(ctx)
	}
	var res string
	if err := s.queryOne(ctx, s.w, `PRAGMA integrity_check`, nil, &res); err != nil {
		return "", err
	}
	return res, nil
}
