// Package store keeps pairingd's state in SQLite (the embedded default) or
// PostgreSQL (for several instances), through GORM. It implements
// pairing.Store. Every operation that must hold under concurrency is one
// conditional UPDATE whose affected row count or RETURNING row decides,
// so the rules hold across connections and across instances.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.Store = (*Store)(nil)

// Drivers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config selects and tunes the database (yaml section database).
type Config struct {
	// Driver is "sqlite" or "postgres".
	Driver string `yaml:"driver"`
	// DSN is a file path (or file: URI) for SQLite, a URL or key=value
	// string for PostgreSQL.
	DSN string `yaml:"dsn"`
	// MaxOpenConns bounds the PostgreSQL pool and the SQLite reader pool;
	// 0 means 10. SQLite always has exactly one writer connection.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// DefaultConfig is SQLite in the working directory.
func DefaultConfig() Config { return Config{Driver: SQLite, DSN: "pairingd.db"} }

// Validate checks the configuration before Open; each error names its key.
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case SQLite, Postgres:
	default:
		errs = append(errs, fmt.Errorf("driver: must be sqlite or postgres, got %q", c.Driver))
	}
	if c.DSN == "" {
		errs = append(errs, errors.New("dsn: must not be empty"))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, errors.New("max_open_conns: must not be negative (0 means 10)"))
	}
	return errors.Join(errs...)
}

// Store is the database. Reads that are not part of a transaction go to
// the reader pool; writes and transactions go to the writer pool. On
// PostgreSQL both are the same pool; on SQLite the writer is one
// connection, so writers queue in the process instead of failing with
// SQLITE_BUSY, and readers run beside it (WAL).
type Store struct {
	repo
	driver string
	writer *gorm.DB
	reader *gorm.DB
	log    *slog.Logger
	// batch runs SQLite's write transactions with group commit (batch.go).
	batch *batcher
	// keyUse keeps api_keys.last_used_at (keyuse.go).
	keyUse *keyUse
}

// repo runs the operations on a reader and a writer; inside a transaction
// both are the transaction.
type repo struct {
	r, w *gorm.DB
	// rq, wq are the same connections (or transaction) without GORM, for
	// the hot path (fastsql.go).
	rq, wq sqlConn
	driver string
}

// Open connects to the database. It does not migrate; call Migrate.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 10
	}
	gcfg := func() *gorm.Config {
		return &gorm.Config{
			// No GORM statement cache: it deadlocks when a transaction
			// holds the pool's last connection while another caller
			// prepares the statement it needs (go-gorm/gorm#7465). The
			// SQLite driver caches prepared statements per connection
			// (_stmt_cache_size in sqliteDSN); pgx caches its own.
			PrepareStmt:            false,
			Logger:                 logger.Discard, // queries hold hashes and ids: never log them
			SkipDefaultTransaction: true,
			NowFunc:                func() time.Time { return time.Now().UTC() },
		}
	}
	s := &Store{driver: cfg.Driver, log: log, keyUse: newKeyUse()}
	switch cfg.Driver {
	case SQLite:
		if cfg.DSN == "" {
			return nil, errors.New("database.dsn: empty SQLite path")
		}
		w, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: sqliteDSN(cfg.DSN, false)}), gcfg())
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", translate(err))
		}
		wdb, err := w.DB()
		if err != nil {
			return nil, err
		}
		wdb.SetMaxOpenConns(1)
		wdb.SetMaxIdleConns(1)
		wdb.SetConnMaxLifetime(0)
		s.writer, s.reader = w, w
		if !strings.Contains(cfg.DSN, ":memory:") && !strings.Contains(cfg.DSN, "mode=memory") {
			r, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: sqliteDSN(cfg.DSN, true)}), gcfg())
			if err != nil {
				_ = wdb.Close()
				return nil, fmt.Errorf("open sqlite: %w", translate(err))
			}
			rdb, err := r.DB()
			if err != nil {
				_ = wdb.Close()
				return nil, err
			}
			rdb.SetMaxOpenConns(cfg.MaxOpenConns)
			rdb.SetMaxIdleConns(cfg.MaxOpenConns)
			s.reader = r
		}
	case Postgres:
		db, err := gorm.Open(postgres.New(postgres.Config{DSN: cfg.DSN}), gcfg())
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", translate(err))
		}
		sdb, err := db.DB()
		if err != nil {
			return nil, err
		}
		sdb.SetMaxOpenConns(cfg.MaxOpenConns)
		sdb.SetMaxIdleConns(cfg.MaxOpenConns)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		s.writer, s.reader = db, db
	default:
		return nil, fmt.Errorf("database.driver: must be sqlite or postgres, got %q", cfg.Driver)
	}
	rdb, err := s.reader.DB()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	wdb, err := s.writer.DB()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.repo = repo{r: s.reader, w: s.writer, rq: rdb, wq: wdb, driver: s.driver}
	if s.driver == SQLite {
		s.batch = newBatcher(s)
	}
	if err := s.ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// walAutoCheckpoint is how many WAL pages a commit lets pile up before it
// copies them back into the database file (SQLite's default: 1000). The
// copy, with its fsync, happens inside a COMMIT on the single writer, so
// every write waits for it: smaller, more frequent checkpoints cut the
// stalls, and too small ones cost throughput. Interleaved runs of
// api/bench/load.sh's requests on 2026-12-02: authorize p99 on match 34 to
// 36 ms at 1000, 22 to 27 ms at 500 or 250; on register 250 lost 7% of the
// throughput, 500 about 3% (p99 28 to 30 ms against 34 to 35).
const walAutoCheckpoint = 500

// tempStore keeps SQLite's temporary files in memory, among them the
// statement journal that group commit (batch.go) uses: every transaction
// of a batch runs in a savepoint, and a savepoint journals the original of
// each page it changes that the batch already changed. With the default
// temp_store, SQLite gives that journal 64 KiB memory chunks (its spill
// size) instead of 1 KiB ones; with the C library, glibc then grew and
// trimmed the writer thread's heap for every batch, about 430 madvise
// calls a second under load (strace -c), each one flushing the TLBs of
// every core. Interleaved runs of api/bench/load.sh's requests on
// 2026-12-02: server CPU per authorize fell from 0.26-0.29 ms to
// 0.17-0.19 ms on match (4,806-5,388 to 6,833-7,307 requests/s, p99 21-23
// to 17-18 ms) and from 0.40-0.43 to 0.31-0.32 ms on register. The
// journal is bounded by a batch (maxBatch transactions); the other
// temporary files (sorts without an index, VACUUM) come from operator
// commands on tables that fit in memory many times over.
const tempStore = "MEMORY"

// sqliteDSN adds the connection settings pairingd relies on: WAL (readers
// beside the writer), a busy timeout (other processes such as the CLI),
// foreign keys, BEGIN IMMEDIATE for transactions (a transaction takes the
// write lock at its start, so it never fails to upgrade a read lock).
func sqliteDSN(dsn string, readOnly bool) string {
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + sqliteParams(readOnly).Encode()
}

// Driver is "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// SerializesWrites: on SQLite every write transaction runs on the one
// writer connection, one at a time (BEGIN IMMEDIATE).
func (s *Store) SerializesWrites() bool { return s.driver == SQLite }

// Close closes every connection.
func (s *Store) Close() error {
	s.keyUse.close()
	if s.batch != nil {
		s.batch.stop()
	}
	var errs []error
	for _, db := range []*gorm.DB{s.writer, s.reader} {
		if db == nil {
			continue
		}
		if sdb, err := db.DB(); err == nil {
			if err := sdb.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
				errs = append(errs, err)
			}
		}
		if s.reader == s.writer {
			break
		}
	}
	return errors.Join(errs...)
}

// Ping tells whether the database answers, within 2 seconds.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.ping(ctx); err != nil {
		return err
	}
	// A database can answer and still refuse writes (a read-only file or
	// disk, a PostgreSQL standby after a failover): write a heartbeat row,
	// so that readiness means pairing can work.
	_, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, "heartbeat", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// ping checks that both pools answer.
func (s *Store) ping(ctx context.Context) error {
	for _, db := range []*gorm.DB{s.writer, s.reader} {
		sdb, err := db.DB()
		if err != nil {
			return translate(err)
		}
		if err := sdb.PingContext(ctx); err != nil {
			return translate(err)
		}
	}
	return nil
}

// Tx runs fn in one transaction. On SQLite it runs on the single writer
// connection (BEGIN IMMEDIATE), committed together with the other
// transactions queued meanwhile (group commit, batch.go); on PostgreSQL it
// runs at READ COMMITTED, where the conditional updates and unique indexes
// decide races.
func (s *Store) Tx(ctx context.Context, fn func(pairing.Repo) error) error {
	if s.batch != nil {
		return s.batch.run(ctx, fn)
	}
	var fnErr error
	err := s.writer.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fnErr = fn(txRepo(tx, s.driver))
		return fnErr
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		return fnErr // already translated by the repo, or the caller's own
	}
	return translate(err)
}
