package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Every statement of the package goes through this file: database/sql on
// the drivers' connections, with "?" placeholders rewritten once per
// statement text for PostgreSQL. An ORM's statement building and
// reflection cost about as much as a short SQLite query, and the row
// structs already say how a row maps (rows.go).

// conn is what a statement runs on: a pool, a transaction, or the one
// connection migrations hold.
type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// repo runs the operations: reads on r, writes on w. On SQLite r is the
// reader pool and w the single writer; inside a transaction both are the
// transaction.
type repo struct {
	r, w   conn
	driver string
	inTx   bool
}

// txRepo runs the operations inside tx.
func txRepo(tx *sql.Tx, driver string) repo { return repo{r: tx, w: tx, driver: driver, inTx: true} }

// pgQueries caches the PostgreSQL form ($1, $2, ...) of each statement
// text. The texts are built from this package's constants, so the cache
// is bounded.
var pgQueries sync.Map

// bind returns query in the driver's placeholder syntax. It does not look
// inside string literals: no statement of the package has a "?" in one.
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

// exec runs a write on w and returns the affected row count.
func (r repo) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := r.w.ExecContext(ctx, r.bind(query), args...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return n, translate(err)
}

// execLater runs a write whose outcome the caller does not read back:
// inside a PostgreSQL transaction it is sent with the transaction's next
// statement or its COMMIT (pgpipe.go), and a failure fails that.
func (r repo) execLater(ctx context.Context, query string, args ...any) error {
	if r.driver == Postgres && r.inTx {
		args = append([]any{sendWithNext{}}, args...)
	}
	_, err := r.exec(ctx, query, args...)
	return err
}

// queryOne scans the one row query returns into dest; no row is
// pairing.ErrNotFound.
func (r repo) queryOne(ctx context.Context, db conn, query string, args []any, dest ...any) error {
	return translate(db.QueryRowContext(ctx, r.bind(query), args...).Scan(dest...))
}

// getRow reads one T (a row struct, rows.go) from db; query selects
// columnsOf[T]. No row is pairing.ErrNotFound.
func getRow[T any](ctx context.Context, r repo, db conn, query string, args ...any) (T, error) {
	var row T
	err := r.queryOne(ctx, db, query, args, fieldsOf(&row)...)
	return row, err
}

// listRows reads every T query returns; query selects columnsOf[T].
func listRows[T any](ctx context.Context, r repo, db conn, query string, args ...any) ([]T, error) {
	return listScanned(ctx, r, db, fieldsOf[T], query, args...)
}

// listScanned reads every row query returns into a T through fields.
func listScanned[T any](ctx context.Context, r repo, db conn, fields func(*T) []any, query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, r.bind(query), args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var row T
		if err := rows.Scan(fields(&row)...); err != nil {
			return nil, translate(err)
		}
		out = append(out, row)
	}
	return out, translate(rows.Err())
}

// atomic runs fn as one unit: in a savepoint inside a transaction (so
// that a failed statement, a unique violation on PostgreSQL for one,
// leaves the surrounding transaction usable), in a transaction of its own
// outside one.
func (r repo) atomic(ctx context.Context, fn func(repo) error) error {
	if !r.inTx {
		return writeTx(ctx, r.w.(beginner), r.driver, fn)
	}
	if _, err := r.w.ExecContext(ctx, "SAVEPOINT unit"); err != nil {
		return translate(err)
	}
	if err := fn(r); err != nil {
		if _, rbErr := r.w.ExecContext(ctx, "ROLLBACK TO SAVEPOINT unit"); rbErr != nil {
			return translate(rbErr)
		}
		_, _ = r.w.ExecContext(ctx, "RELEASE SAVEPOINT unit")
		return err
	}
	_, err := r.w.ExecContext(ctx, "RELEASE SAVEPOINT unit")
	return translate(err)
}

// txStarter starts transactions: a pool or one connection.
type txStarter interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// beginner is a pool: it hands out connections and starts transactions.
type beginner interface {
	txStarter
	Conn(ctx context.Context) (*sql.Conn, error)
}

// inTx runs fn in a transaction on db and commits it when fn returns nil.
// fn's own error comes back as it is; a panic rolls back and goes on.
func inTx(ctx context.Context, db txStarter, fn func(*sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	return translate(tx.Commit())
}

// writeBound bounds how long a write transaction runs on after its caller
// has gone (writeTx): as long as the HTTP server gives a request.
const writeBound = 30 * time.Second

// writeTx runs one of the service's write transactions. Once it has a
// connection it runs to its end even when ctx is cancelled (a client that
// hung up, a deadline), within writeBound, as SQLite's group commit does
// (batch.go): the PostgreSQL driver answers a cancelled statement by
// closing its connection, so every hang-up under load would cost a new
// connection, and a new database backend, exactly when the database is
// busiest. Waiting for a connection still ends with ctx.
func writeTx(ctx context.Context, db beginner, driver string, fn func(repo) error) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return translate(err)
	}
	defer c.Close()
	bound, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeBound)
	defer cancel()
	return inTx(bound, c, func(tx *sql.Tx) error {
		return fn(repo{r: finishing{tx, bound}, w: finishing{tx, bound}, driver: driver, inTx: true})
	})
}

// finishing runs a transaction's statements under the transaction's own
// bound instead of the context each statement is given (writeTx).
type finishing struct {
	tx    *sql.Tx
	bound context.Context
}

func (f finishing) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return f.tx.ExecContext(f.bound, query, args...)
}

func (f finishing) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return f.tx.QueryContext(f.bound, query, args...)
}

func (f finishing) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return f.tx.QueryRowContext(f.bound, query, args...)
}
