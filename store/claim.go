package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// leasedRow is a row of a table that workers claim with a lease.
type leasedRow interface{ rowID() int64 }

func (r inboundRow) rowID() int64 { return r.ID }
func (r outboxRow) rowID() int64  { return r.ID }

// claim runs a claim query shared by the site-events outbox and the
// inbound queue. tmpl has one %s for the row-lock clause (PostgreSQL:
// FOR UPDATE SKIP LOCKED, so instances never wait on or take each other's
// rows; SQLite: none, its single writer already serializes claims) and six
// arguments: now, now, limit, owner, lease end, now. The rows come back in
// id order.
func claim[R leasedRow](ctx context.Context, s *Store, tmpl, owner string, now time.Time, lease time.Duration, limit int) ([]R, error) {
	lock := ""
	if s.driver == Postgres {
		lock = "FOR UPDATE SKIP LOCKED"
	}
	n := us(now)
	var rows []R
	if err := s.writer.WithContext(ctx).Raw(fmt.Sprintf(tmpl, lock), n, n, limit, owner, us(now.Add(lease)), n).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	slices.SortFunc(rows, func(a, b R) int { return cmp.Compare(a.rowID(), b.rowID()) })
	return rows, nil
}
