package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pairingd/pairingd/pairing"
)

// Group commit on SQLite. Every write transaction runs on the one writer
// connection, one after the other, and most of a short transaction's cost
// is its COMMIT (writing the WAL). So transactions are handed to one
// writer goroutine, which runs whatever has queued meanwhile inside one
// SQLite transaction, each in its own savepoint, and commits once:
//
//   - a function that fails is rolled back to its savepoint and leaves
//     no trace; the others still commit;
//   - a function's caller gets its answer only after the COMMIT that made
//     its changes durable; if that COMMIT fails, every caller in the batch
//     gets the error and none of their changes exist;
//   - the functions run in order, each seeing the ones before it, exactly
//     as if they had been separate transactions one after the other.
//
// When nothing else is waiting, a batch is one transaction (no savepoint).
// Statements run with the caller's context values but not its
// cancellation (detached): an interrupted write would make SQLite roll
// back the whole batch.

// maxBatch bounds how many transactions share one COMMIT.
const maxBatch = 64

type txRequest struct {
	ctx  context.Context
	fn   func(pairing.Repo) error
	done chan txResult
}

type txResult struct {
	err      error
	panicked bool
	panicVal any
}

// errBatchAborted: the database dropped the batch's transaction (a disk
// error, for instance); nothing in the batch was written.
var errBatchAborted = errors.New("write batch aborted")

type batcher struct {
	s    *Store
	reqs chan *txRequest
	quit chan struct{}
	done chan struct{}
	once sync.Once
	// ran and commits count functions run and COMMITs made (tests).
	ran, commits atomic.Int64
}

func newBatcher(s *Store) *batcher {
	b := &batcher{s: s, reqs: make(chan *txRequest), quit: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// stop ends the writer goroutine after the batch it is running.
func (b *batcher) stop() {
	b.once.Do(func() { close(b.quit) })
	<-b.done
}

// run hands fn to the writer goroutine and waits for its result. Once the
// writer has taken fn, run waits for the COMMIT even if ctx ends, so the
// answer says what happened.
func (b *batcher) run(ctx context.Context, fn func(pairing.Repo) error) error {
	req := &txRequest{ctx: ctx, fn: fn, done: make(chan txResult, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.quit:
		return fmt.Errorf("%w: store closed", pairing.ErrUnavailable)
	}
	res := <-req.done
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

func (b *batcher) loop() {
	defer close(b.done)
	batch := make([]*txRequest, 0, maxBatch)
	for {
		select {
		case req := <-b.reqs:
			batch = append(batch[:0], req)
		case <-b.quit:
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case req := <-b.reqs:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		b.runBatch(batch)
		clear(batch)
	}
}

// runBatch runs the requests in one transaction and answers each.
func (b *batcher) runBatch(batch []*txRequest) {
	results := make([]txResult, len(batch))
	defer func() {
		for i, req := range batch {
			req.done <- results[i]
		}
	}()
	live := batch[:0:0]
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	tx, err := b.s.writer.BeginTx(context.Background(), nil)
	if err != nil {
		err := translate(err)
		for i := range results {
			if results[i].err == nil {
				results[i].err = err
			}
		}
		return
	}
	savepoints := len(live) > 1
	committed := 0 // requests whose changes wait for the COMMIT
	for i, req := range batch {
		if results[i].err != nil {
			continue
		}
		if savepoints {
			if _, err := tx.Exec("SAVEPOINT batch_item"); err != nil {
				b.abort(tx, batch, results, i, err)
				return
			}
		}
		d := detached{tx}
		res := call(repo{r: d, w: d, driver: b.s.driver, inTx: true}, req.fn)
		b.ran.Add(1)
		results[i] = res
		switch {
		case !savepoints && (res.err != nil || res.panicked):
			_ = tx.Rollback()
			return
		case !savepoints:
			committed++
		case res.err != nil || res.panicked:
			if _, err := tx.Exec("ROLLBACK TO batch_item"); err != nil {
				b.abort(tx, batch, results, i+1, err)
				return
			}
			if _, err := tx.Exec("RELEASE batch_item"); err != nil {
				b.abort(tx, batch, results, i+1, err)
				return
			}
		default:
			if _, err := tx.Exec("RELEASE batch_item"); err != nil {
				b.abort(tx, batch, results, i+1, err)
				return
			}
			committed++
		}
	}
	if committed == 0 {
		_ = tx.Rollback()
		return
	}
	b.commits.Add(1)
	if err := tx.Commit(); err != nil {
		err = translate(err)
		for i := range results {
			if results[i].err == nil && !results[i].panicked {
				results[i].err = err
			}
		}
	}
}

// detached runs a batch's statements with their context's values but not
// its cancellation: an interrupted statement would make SQLite roll back
// the whole batch.
type detached struct{ conn }

func (d detached) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.conn.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (d detached) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.conn.QueryContext(context.WithoutCancel(ctx), query, args...)
}

func (d detached) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.conn.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}

// abort gives up a batch whose transaction the database no longer holds
// (a savepoint statement failed): everything before failed with it, and
// what was not run yet is refused. Requests [0, upTo) have run.
func (b *batcher) abort(tx *sql.Tx, batch []*txRequest, results []txResult, upTo int, cause error) {
	_ = tx.Rollback()
	err := fmt.Errorf("%w: %w: %v", pairing.ErrUnavailable, errBatchAborted, translate(cause))
	for i := range batch {
		if i < upTo && (results[i].err != nil || results[i].panicked) {
			continue // failed on its own: its own answer stands
		}
		results[i] = txResult{err: err}
	}
}

// call runs fn on the batch's transaction, turning a panic into a result
// that the caller's goroutine re-raises.
func call(r repo, fn func(pairing.Repo) error) (res txResult) {
	defer func() {
		if v := recover(); v != nil {
			res = txResult{panicked: true, panicVal: v}
		}
	}()
	return txResult{err: fn(r)}
}
