package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL connections that pipeline a transaction's fixed round trips.
// Through pgx's database/sql driver a transaction costs a round trip for
// BEGIN, one per statement and one for COMMIT: four for an authorize that
// spends a PIN and writes its audit row, where the work itself needs two.
// Every round trip wakes a backend and the Go process once more, and on a
// machine where the database is the bottleneck that was the largest cost
// left (docs/performance.md). These connections send the same statements
// in the same order, fewer times:
//
//   - BEGIN is not sent on its own: it goes with the transaction's first
//     statement, in one pipeline (one network write, one Sync).
//   - A write the transaction never reads back (an audit row, a grant:
//     execLater) is queued and goes with the next statement, or with
//     COMMIT. A queued write that fails fails the statement it went with,
//     or the COMMIT, so the transaction fails whole as before; only the
//     error arrives one call later.
//
// So an authorize is two round trips, BEGIN+spend and insert+COMMIT, like
// the bare read and update it is measured against. Only transactions with
// default options are pipelined; others run as pgx runs them.

// pgPipeConnector makes pipelining connections from pgx's connector.
type pgPipeConnector struct{ driver.Connector }

func (c pgPipeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		_ = dc.Close()
		return nil, errors.New("store: pgx connector returned an unexpected connection type")
	}
	return &pgPipeConn{Conn: sc}, nil
}

// openPostgres opens a pool of pipelining connections to dsn.
func openPostgres(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(pgPipeConnector{stdlib.GetConnector(*cfg)}), nil
}

// sendWithNext marks a write as one to queue (execLater): passed as the
// first argument, it never reaches the database.
type sendWithNext struct{}

type queuedWrite struct {
	query string
	args  []any
}

// pgPipeConn is one pgx connection with the transaction state above.
// database/sql uses a connection from one goroutine at a time.
type pgPipeConn struct {
	*stdlib.Conn
	inTx    bool          // inside a pipelined transaction
	begin   bool          // its BEGIN is not sent yet
	pending []queuedWrite // writes to send with the next statement
}

func (c *pgPipeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts != (driver.TxOptions{}) {
		return c.Conn.BeginTx(ctx, opts)
	}
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	c.inTx, c.begin, c.pending = true, true, nil
	return &pgPipeTx{c: c, ctx: ctx}, nil
}

// prefix is what must go before the next statement: BEGIN, if not sent
// yet, and the queued writes.
func (c *pgPipeConn) prefix() *pgx.Batch {
	if !c.begin && len(c.pending) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	if c.begin {
		b.Queue("begin")
	}
	for _, w := range c.pending {
		b.Queue(w.query, w.args...)
	}
	c.begin, c.pending = false, nil
	return b
}

// runPrefix reads the results of a batch's prefix (all but its last n
// statements) and returns the first error.
func runPrefix(br pgx.BatchResults, b *pgx.Batch, n int) error {
	for range b.Len() - n {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}

func valuesOf(named []driver.NamedValue) []any {
	out := make([]any, len(named))
	for i, v := range named {
		out[i] = v.Value
	}
	return out
}

func (c *pgPipeConn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	later := len(named) > 0 && named[0].Value == sendWithNext{}
	if later {
		named = named[1:]
		if c.inTx {
			c.pending = append(c.pending, queuedWrite{query, valuesOf(named)})
			return driver.RowsAffected(0), nil
		}
	}
	b := c.prefix()
	if b == nil {
		return c.Conn.ExecContext(ctx, query, named)
	}
	b.Queue(query, valuesOf(named)...)
	br := c.Conn.Conn().SendBatch(ctx, b)
	err := runPrefix(br, b, 1)
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return driver.RowsAffected(tag.RowsAffected()), err
}

func (c *pgPipeConn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	b := c.prefix()
	if b == nil {
		return c.Conn.QueryContext(ctx, query, named)
	}
	b.Queue(query, valuesOf(named)...)
	br := c.Conn.Conn().SendBatch(ctx, b)
	rows, err := bufferedRows(br, b)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// bufferedRows reads the rows of a batch's last statement into memory:
// a transaction's first statement reads one row or a few.
func bufferedRows(br pgx.BatchResults, b *pgx.Batch) (*memRows, error) {
	if err := runPrefix(br, b, 1); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &memRows{}
	for _, fd := range rows.FieldDescriptions() {
		out.cols = append(out.cols, fd.Name)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = driverValue(v)
		}
		out.rows = append(out.rows, vals)
	}
	return out, rows.Err()
}

// driverValue turns what pgx decodes into what database/sql scans: the
// schema has bigint, boolean, bytea and text, and expressions may give
// smaller integers.
func driverValue(v any) any {
	switch x := v.(type) {
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case driver.Valuer:
		if dv, err := x.Value(); err == nil {
			return dv
		}
	}
	return v
}

// memRows is a read result held in memory.
type memRows struct {
	cols []string
	rows [][]any
}

func (r *memRows) Columns() []string { return r.cols }
func (r *memRows) Close() error      { r.rows = nil; return nil }

func (r *memRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	for i, v := range r.rows[0] {
		dest[i] = v
	}
	r.rows = r.rows[1:]
	return nil
}

// ResetSession also refuses a connection left inside a pipelined
// transaction (database/sql ends every transaction first, so this is a
// safety net).
func (c *pgPipeConn) ResetSession(ctx context.Context) error {
	if c.inTx {
		return driver.ErrBadConn
	}
	return c.Conn.ResetSession(ctx)
}

// pgPipeTx ends a pipelined transaction. ctx is the one it began with,
// as pgx's own transactions keep it.
type pgPipeTx struct {
	c   *pgPipeConn
	ctx context.Context
}

// Commit sends what is queued and COMMIT in one pipeline. A transaction
// that sent nothing and queued nothing has nothing to commit.
func (t *pgPipeTx) Commit() error {
	c := t.c
	defer c.endTx()
	if c.begin && len(c.pending) == 0 {
		return nil
	}
	b := c.prefix()
	if b == nil {
		b = &pgx.Batch{}
	}
	b.Queue("commit")
	br := c.Conn.Conn().SendBatch(t.ctx, b)
	err := runPrefix(br, b, 1)
	if err == nil {
		var tag pgconn.CommandTag
		// COMMIT of a transaction that failed answers ROLLBACK.
		if tag, err = br.Exec(); err == nil && tag.String() != "COMMIT" {
			err = pgx.ErrTxCommitRollback
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil && c.Conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = c.Conn.Conn().Exec(t.ctx, "rollback")
	}
	return err
}

// Rollback drops what is queued; a transaction whose BEGIN was never sent
// has nothing to roll back.
func (t *pgPipeTx) Rollback() error {
	c := t.c
	defer c.endTx()
	if c.begin {
		return nil
	}
	_, err := c.Conn.Conn().Exec(t.ctx, "rollback")
	return err
}

func (c *pgPipeConn) endTx() { c.inTx, c.begin, c.pending = false, false, nil }
