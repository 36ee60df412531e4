// Package store keeps pairingd's state in SQLite (the embedded default) or
// PostgreSQL (for several instances). GORM opens the databases with its
// drivers; every statement then runs through one small database/sql layer
// (sql.go), which costs a quarter of GORM's allocations on the hot path
// (docs/performance.md). It implements pairing.Store. Every operation that must hold under
// concurrency is one conditional UPDATE whose affected row count or
// RETURNING row decides, so the rules hold across connections and across
// instances.
package store

import (
	"context"
	"database/sql"
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
	writer, reader *sql.DB
	log            *slog.Logger
	// batch runs SQLite's write transactions with group commit (batch.go).
	batch *batcher
	// keyUse keeps api_keys.last_used_at (keyuse.go).
	keyUse *keyUse
	// txGate admits PostgreSQL transactions to the pool in arrival order
	// (Tx); it holds one token per connection.
	txGate chan struct{}
}

// Open connects to the database. It does not migrate; call Migrate.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 10
	}
	s := &Store{log: log, keyUse: newKeyUse()}
	switch cfg.Driver {
	case SQLite:
		if cfg.DSN == "" {
			return nil, errors.New("database.dsn: empty SQLite path")
		}
		if err := prepareSQLiteFile(SQLiteFile(cfg.DSN), log); err != nil {
			return nil, err
		}
		w, err := open(sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: sqliteDSN(cfg.DSN, false)}))
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", translate(err))
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		s.writer, s.reader = w, w
		if !strings.Contains(cfg.DSN, ":memory:") && !strings.Contains(cfg.DSN, "mode=memory") {
			r, err := open(sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: sqliteDSN(cfg.DSN, true)}))
			if err != nil {
				_ = w.Close()
				return nil, fmt.Errorf("open sqlite: %w", translate(err))
			}
			r.SetMaxOpenConns(cfg.MaxOpenConns)
			r.SetMaxIdleConns(cfg.MaxOpenConns)
			s.reader = r
		}
	case Postgres:
		pool, err := openPostgres(cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", translate(err))
		}
		db, err := open(postgres.New(postgres.Config{Conn: pool}))
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", translate(err))
		}
		db.SetMaxOpenConns(cfg.MaxOpenConns)
		db.SetMaxIdleConns(cfg.MaxOpenConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.writer, s.reader = db, db
		s.txGate = make(chan struct{}, cfg.MaxOpenConns)
	default:
		return nil, fmt.Errorf("database.driver: must be sqlite or postgres, got %q", cfg.Driver)
	}
	s.repo = repo{r: s.reader, w: s.writer, driver: cfg.Driver}
	if cfg.Driver == SQLite {
		s.batch = newBatcher(s)
	}
	if err := s.ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// open opens a database through GORM's driver and returns its connection
// pool. GORM logs nothing (statements hold hashes and ids) and prepares
// nothing (the drivers cache their own prepared statements).
func open(d gorm.Dialector) (*sql.DB, error) {
	g, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, DisableAutomaticPing: true})
	if err != nil {
		return nil, err
	}
	return g.DB()
}

// walAutoCheckpoint is how many WAL pages a commit lets pile up before it
// copies them back into the database file (SQLite's default: 1000). The
// copy happens inside a COMMIT on the single writer, so every write waits
// for it: smaller checkpoints cut those stalls, too small ones cost
// throughput (docs/performance.md has the measurements).
const walAutoCheckpoint = 500

// tempStore keeps SQLite's temporary files in memory, among them the
// statement journal of group commit's savepoints (batch.go): on disk,
// SQLite grows it in 64 KiB chunks, and the heap churn that causes costs
// more CPU per write than the journal is worth (docs/performance.md). The
// journal is bounded by a batch (maxBatch transactions).
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

// Close closes every connection.
func (s *Store) Close() error {
	s.keyUse.close()
	if s.batch != nil {
		s.batch.stop()
	}
	var errs []error
	for _, db := range []*sql.DB{s.writer, s.reader} {
		if err := db.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
			errs = append(errs, err)
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
	return s.putSetting(ctx, "heartbeat", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
}

// ping checks that both pools answer.
func (s *Store) ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.writer, s.reader} {
		if err := db.PingContext(ctx); err != nil {
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
//
// On PostgreSQL, transactions wait for a connection in the order they
// came (txGate): database/sql hands a freed connection to a random
// waiter, and under load that random order, not the work, made the slow
// tail of authorize (docs/performance.md).
func (s *Store) Tx(ctx context.Context, fn func(pairing.Repo) error) error {
	if s.batch != nil {
		return s.batch.run(ctx, fn)
	}
	select {
	case s.txGate <- struct{}{}:
		defer func() { <-s.txGate }()
	case <-ctx.Done():
		return translate(ctx.Err())
	}
	return writeTx(ctx, s.writer, s.driver, func(r repo) error { return fn(r) })
}
