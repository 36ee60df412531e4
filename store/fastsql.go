package store

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// The statements on the authorize path go to database/sql directly, on
// the same connections (and inside the same transactions) as GORM: GORM's
// statement building and callbacks cost about as much as a short SQLite
// query (profiled under load). Placeholders are written as "?" and
// rewritten once per statement text for PostgreSQL.

// sqlConn is a pool or a transaction without GORM (*sql.DB, *sql.Tx).
type sqlConn = gorm.ConnPool

// txRepo runs the operations inside transaction tx (a *gorm.DB from
// Begin or Transaction).
func txRepo(tx *gorm.DB, driver string) repo {
	return repo{r: tx, w: tx, rq: tx.Statement.ConnPool, wq: tx.Statement.ConnPool, driver: driver}
}

// pgQueries caches the PostgreSQL form ($1, $2, ...) of each statement
// text. The texts are constants of this package, so the cache is bounded.
var pgQueries sync.Map

// bind returns query in the driver's placeholder syntax. It does not look
// inside string literals: the statements that use it have none.
func (r repo) bind(query string) string {
	if r.driver != Postgres {
		return query
	}
	if q, ok := pgQueries.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	q := b.String()
	pgQueries.Store(query, q)
	return q
}

// queryOne scans the one row query returns into dest; no row is
// pairing.ErrNotFound.
func (r repo) queryOne(ctx context.Context, db sqlConn, query string, args []any, dest ...any) error {
	return translate(db.QueryRowContext(ctx, r.bind(query), args...).Scan(dest...))
}

// execSQL runs a write on the writer (or the transaction) and returns the
// affected row count.
func (r repo) execSQL(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := r.wq.ExecContext(ctx, r.bind(query), args...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return n, translate(err)
}
