package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// migrationLock is the PostgreSQL advisory lock key that serializes
// migrations of instances starting together.
const migrationLock = 0x7061697264 // "paird"

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the driver's ordered migrations: files named
// NNNN_name.sql under migrations/<driver>/.
func migrations(driver string) ([]migration, error) {
	dir := path.Join("migrations", driver)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// statements splits a migration into statements: each ends with a line
// that ends in ';'. Our files keep semicolons out of strings and comments.
func statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Migrate applies the migrations not applied yet, each in its own
// transaction with its version row. It is safe to run from several
// instances at once (PostgreSQL advisory lock; SQLite's write lock) and
// to run again.
func (s *Store) Migrate(ctx context.Context) error {
	all, err := migrations(s.driver)
	if err != nil {
		return err
	}
	// One connection: the PostgreSQL advisory lock belongs to a session.
	c, err := s.writer.Conn(ctx)
	if err != nil {
		return translate(err)
	}
	defer c.Close()
	conn := repo{r: c, w: c, driver: s.driver}
	if s.driver == Postgres {
		if _, err := conn.exec(ctx, `SELECT pg_advisory_lock(?)`, migrationLock); err != nil {
			return err
		}
		defer conn.exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, migrationLock)
	}
	if _, err := conn.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	applied, err := listScanned(ctx, conn, c, func(v *int) []any { return []any{v} }, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	done := map[int]bool{}
	latest := 0
	for _, v := range applied {
		done[v] = true
		latest = max(latest, v)
	}
	if n := all[len(all)-1].version; latest > n {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade pairingd", latest, n)
	}
	for _, m := range all {
		if done[m.version] {
			continue
		}
		err := inTx(ctx, c, func(sqlTx *sql.Tx) error {
			tx := txRepo(sqlTx, s.driver)
			// Checked again under the write lock: another process may
			// have applied it since we looked (SQLite has no advisory lock).
			var n int64
			if err := tx.queryOne(ctx, tx.w, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, []any{m.version}, &n); err != nil || n > 0 {
				return err
			}
			for _, stmt := range statements(m.sql) {
				if _, err := sqlTx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", m.name, translate(err))
				}
			}
			_, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return err
		}
		s.log.Info("applied migration", "name", m.name, "driver", s.driver)
	}
	return nil
}

// SchemaVersion is the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.queryOne(ctx, s.w, `SELECT MAX(version) FROM schema_migrations`, nil, &v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}
