package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pairingd/pairingd/pairing"
)

// writeCounter counts the network writes of a connection: one per round
// trip, since pgx writes a whole pipeline at once. The pings that pgx's
// driver sends before reusing a connection idle for a second are not
// counted: they depend on the test's timing, not on the transaction.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(b []byte) (int, error) {
	if !bytes.Contains(b, []byte("-- ping")) {
		c.n.Add(1)
	}
	return c.Conn.Write(b)
}

// countedPool opens a pool of pipelining connections to dsn whose network
// writes are counted.
func countedPool(t *testing.T, dsn string) (*sql.DB, *atomic.Int64) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	writes := &atomic.Int64{}
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return writeCounter{c, writes}, nil
	}
	db := sql.OpenDB(pgPipeConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db, writes
}

// pipeDB opens one pipelining connection to the test server with a
// temporary table t (id primary key, n bigint) holding row 1, and
// counts its writes.
func pipeDB(t *testing.T) (*sql.DB, *atomic.Int64) {
	t.Helper()
	dsn := os.Getenv("PAIRING_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PAIRING_TEST_POSTGRES_DSN not set")
	}
	db, writes := countedPool(t, dsn)
	if _, err := db.Exec(`CREATE TEMPORARY TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO t VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	return db, writes
}

func rowsOf(t *testing.T, db *sql.DB) map[int64]int64 {
	t.Helper()
	rows, err := db.Query(`SELECT id, n FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// spendAndLog is authorize's shape: a conditional update that returns
// its row, then a write nobody reads back, then COMMIT.
func spendAndLog(db *sql.DB, id int64) error {
	return inTx(context.Background(), db, func(tx *sql.Tx) error {
		var n int64
		if err := tx.QueryRow(`UPDATE t SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, id, n)
		return err
	})
}

// A transaction is two round trips: BEGIN with its first statement, the
// queued write with COMMIT.
func TestPipelinedTransactionIsTwoRoundTrips(t *testing.T) {
	db, writes := pipeDB(t)
	if err := spendAndLog(db, 10); err != nil { // pgx prepares each statement once per connection
		t.Fatal(err)
	}
	writes.Store(0)
	if err := spendAndLog(db, 11); err != nil {
		t.Fatal(err)
	}
	if got := writes.Load(); got != 2 {
		t.Fatalf("round trips: %d, want 2", got)
	}
	if got := rowsOf(t, db); got[1] != 2 || got[10] != 1 || got[11] != 2 {
		t.Fatalf("rows: %v", got)
	}
}

// A queued write that fails fails the COMMIT, the transaction leaves
// nothing, and the connection is ready for the next one.
func TestPipelinedQueuedWriteFailsTheCommit(t *testing.T) {
	db, _ := pipeDB(t)
	err := spendAndLog(db, 1) // id 1 exists: the queued insert violates the key
	if !errors.Is(translate(err), pairing.ErrRaced) {
		t.Fatalf("commit of a failed queued write: %v, want a unique violation", err)
	}
	if got := rowsOf(t, db); len(got) != 1 || got[1] != 0 {
		t.Fatalf("rows after the failed transaction: %v", got)
	}
	if err := spendAndLog(db, 12); err != nil {
		t.Fatalf("the next transaction on the connection: %v", err)
	}
	if got := rowsOf(t, db); got[1] != 1 || got[12] != 1 {
		t.Fatalf("rows: %v", got)
	}
}

// A queued write goes before the transaction's next statement, in order,
// and its failure is that statement's.
func TestPipelinedQueuedWriteGoesWithTheNextStatement(t *testing.T) {
	db, _ := pipeDB(t)
	ctx := context.Background()
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, 20, 7); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(`SELECT n FROM t WHERE id = 20`).Scan(&n); err != nil || n != 7 {
			t.Errorf("the queued row, read next: %d %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = inTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE t SET n = 5 WHERE id = 1`); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, 20, 8); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE t SET n = 6 WHERE id = 1`)
		return err
	})
	if !errors.Is(translate(err), pairing.ErrRaced) {
		t.Fatalf("the statement after a failed queued write: %v", err)
	}
	if got := rowsOf(t, db); len(got) != 2 || got[1] != 0 || got[20] != 7 {
		t.Fatalf("rows: %v", got)
	}
}

// Rollback drops what is queued and undoes what was sent; a transaction
// that sent nothing rolls back without a round trip.
func TestPipelinedRollback(t *testing.T) {
	db, writes := pipeDB(t)
	ctx := context.Background()
	stop := errors.New("stop")
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE t SET n = 9 WHERE id = 1`); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, 30, 1); err != nil {
			return err
		}
		return stop
	})
	if err != stop {
		t.Fatal(err)
	}
	writes.Store(0)
	err = inTx(ctx, db, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, 31, 1)
		if err != nil {
			return err
		}
		return stop
	})
	if err != stop || writes.Load() != 0 {
		t.Fatalf("rollback of a transaction that sent nothing: %v, %d writes", err, writes.Load())
	}
	if got := rowsOf(t, db); len(got) != 1 || got[1] != 0 {
		t.Fatalf("rows after rollbacks: %v", got)
	}
	// A transaction of queued writes only is one round trip (once pgx has
	// prepared the statement on the connection).
	for id := int64(32); id <= 33; id++ {
		writes.Store(0)
		err = inTx(ctx, db, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, id, 1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if writes.Load() != 1 {
		t.Fatalf("queued writes only: %d round trips", writes.Load())
	}
	// A transaction that does nothing commits without a round trip.
	writes.Store(0)
	if err := inTx(ctx, db, func(*sql.Tx) error { return nil }); err != nil || writes.Load() != 0 {
		t.Fatalf("an empty transaction: %v, %d writes", err, writes.Load())
	}
	// Outside a transaction a queued write runs at once.
	if _, err := db.Exec(`INSERT INTO t VALUES ($1, $2)`, sendWithNext{}, 34, 1); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, db); got[32] != 1 || got[33] != 1 || got[34] != 1 {
		t.Fatalf("rows: %v", got)
	}
}

// A transaction's first statement is read through pgx's batch rather than
// the driver's rows: every row, and the values database/sql scans from
// the driver's own (integers of each size, bool, bytea, text, NULL).
func TestPipelinedFirstQueryScansAsTheDriver(t *testing.T) {
	db, _ := pipeDB(t)
	const q = `SELECT g, g::int2, g::int4, g > 1, decode('00ff', 'hex'), 'row ' || g, NULL::text, sum(g) OVER ()
		FROM generate_series(1, 3) g ORDER BY 1`
	type row struct {
		i8, i2, i4 int64
		b          bool
		by         []byte
		s          string
		null       sql.NullString
		sum        int64
	}
	scan := func(rows *sql.Rows) []row {
		defer rows.Close()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.i8, &r.i2, &r.i4, &r.b, &r.by, &r.s, &r.null, &r.sum); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	rows, err := db.Query(q) // outside a transaction: pgx's own rows
	if err != nil {
		t.Fatal(err)
	}
	want := scan(rows)
	var got []row
	err = inTx(context.Background(), db, func(tx *sql.Tx) error {
		rows, err := tx.Query(q)
		if err != nil {
			return err
		}
		got = scan(rows)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 || len(got) != len(want) {
		t.Fatalf("rows: %d in a transaction, %d outside", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.i8 != g.i8 || w.i2 != g.i2 || w.i4 != g.i4 || w.b != g.b || !bytes.Equal(w.by, g.by) || w.s != g.s ||
			w.null != g.null || w.sum != g.sum {
			t.Fatalf("row %d: %+v in a transaction, %+v outside", i, g, w)
		}
	}
	if want[2].sum != 6 || !bytes.Equal(want[0].by, []byte{0, 0xff}) {
		t.Fatalf("values: %+v", want)
	}
	// A first statement that fails leaves the connection usable.
	err = inTx(context.Background(), db, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO t VALUES (1, 1)`)
		return err
	})
	if !errors.Is(translate(err), pairing.ErrRaced) {
		t.Fatalf("a failing first statement: %v", err)
	}
	if got := rowsOf(t, db); len(got) != 1 {
		t.Fatalf("rows: %v", got)
	}
}

// The store's own writes that nothing reads back are queued: a
// transaction that reads, then writes an audit row, is two round trips.
func TestStoreQueuesItsAuditRows(t *testing.T) {
	dsn := freshPostgresSchema(t)
	ctx := context.Background()
	st, err := Open(ctx, Config{Driver: Postgres, DSN: dsn, MaxOpenConns: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// The same store on a pool whose writes are counted.
	db, writes := countedPool(t, dsn)
	st.writer, st.reader, st.repo = db, db, repo{r: db, w: db, driver: Postgres}
	audited := func() error {
		return st.Tx(ctx, func(r pairing.Repo) error {
			if _, err := r.WebUserByID(ctx, 1); !errors.Is(err, pairing.ErrNotFound) {
				return fmt.Errorf("read: %v", err)
			}
			return r.AddAudit(ctx, pairing.AuditEvent{At: time.Unix(1, 0), Action: "authorize", Outcome: "buid_unknown"})
		})
	}
	if err := audited(); err != nil {
		t.Fatal(err)
	}
	writes.Store(0)
	if err := audited(); err != nil {
		t.Fatal(err)
	}
	if got := writes.Load(); got != 2 {
		t.Fatalf("round trips: %d, want 2", got)
	}
	if evs, err := st.AuditEvents(ctx, 10); err != nil || len(evs) != 2 {
		t.Fatalf("audit rows: %d %v", len(evs), err)
	}
}
