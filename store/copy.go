package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Copying a SQLite database into PostgreSQL (pairingd copy). The tables,
// their columns and the order foreign keys impose are read from the two
// catalogs rather than listed here, so a migration that adds a table or a
// column is copied without a change to this file; a table or column that
// exists on one side only stops the copy before anything is written.
//
// The statements below are built from catalog names and batch sizes, not
// from this package's constants, so they do not go through repo.bind and
// its cache: they use PostgreSQL's $n placeholders directly.

// ErrTargetNotEmpty: the PostgreSQL database already holds data. A copy
// never merges into or overwrites a database that has been used.
var ErrTargetNotEmpty = errors.New("the target database is not empty")

// TableCopy is what the copy did to one table.
type TableCopy struct {
	Table string
	// Rows is the number of rows copied; the source and the target both
	// counted this many when the copy committed.
	Rows int64
}

// maxCopyBatch bounds the rows of one multi-row INSERT (PostgreSQL takes
// at most 65535 parameters per statement).
const maxCopyBatch = 500

// CopyTo copies every row of the SQLite database s into the PostgreSQL
// database dst, keeping ids, and sets each identity sequence past the
// highest id copied. dst is migrated first; it must hold no rows at all
// (ErrTargetNotEmpty otherwise), and s must be at this binary's schema
// version. Every table is written in one PostgreSQL transaction, with the
// target's tables locked against other writers, from one read snapshot of
// s; before committing, each table's row count in the target is checked
// against the source's. On any error nothing is written to dst (beyond
// the migrations).
func (s *Store) CopyTo(ctx context.Context, dst *Store) ([]TableCopy, error) {
	if s.driver != SQLite || dst.driver != Postgres {
		return nil, fmt.Errorf("copy: from SQLite to PostgreSQL only (got %s to %s)", s.driver, dst.driver)
	}
	all, err := migrations(SQLite)
	if err != nil {
		return nil, err
	}
	want := all[len(all)-1].version
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy: read the source's schema version: %w", err)
	}
	if have != want {
		return nil, fmt.Errorf("copy: the SQLite database is at schema version %d, this pairingd's is %d: run pairingd migrate on it first (after a backup)", have, want)
	}
	if err := checkForeignTables(ctx, dst); err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	if err := dst.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("copy: migrate the target: %w", err)
	}

	// One read snapshot of the source: a deferred transaction on a reader
	// connection (query-only, so it can neither write nor take the write
	// lock). The snapshot starts at its first SELECT.
	src, err := s.reader.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy: source: %w", translate(err))
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return nil, fmt.Errorf("copy: source: %w", translate(err))
	}
	defer src.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)

	var out []TableCopy
	err = inTx(ctx, dst.writer, func(tx *sql.Tx) error {
		tables, err := copyPlan(ctx, src, tx)
		if err != nil {
			return err
		}
		names := make([]string, len(tables))
		for i, t := range tables {
			names[i] = quoteIdent(t.name)
		}
		// EXCLUSIVE: readers may look, nobody else writes until we commit
		// (a pairingd started on the target too early, a second copy).
		if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock the target's tables: %w", translate(err))
		}
		var used []string
		for _, t := range tables {
			var hasRows bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteIdent(t.name)+`)`).Scan(&hasRows); err != nil {
				return fmt.Errorf("%s: %w", t.name, translate(err))
			}
			if hasRows {
				used = append(used, t.name)
			}
		}
		if len(used) > 0 {
			return fmt.Errorf("%w: %s hold rows (copy into a new database that no pairingd has served from; pairingd migrate alone is fine)", ErrTargetNotEmpty, strings.Join(used, ", "))
		}
		for _, t := range tables {
			n, err := copyTable(ctx, src, tx, t)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if err := resetSequences(ctx, tx, t); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			var inSource, inTarget int64
			if err := src.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.name)).Scan(&inSource); err != nil {
				return fmt.Errorf("%s: count the source's rows: %w", t.name, translate(err))
			}
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.name)).Scan(&inTarget); err != nil {
				return fmt.Errorf("%s: count the target's rows: %w", t.name, translate(err))
			}
			if inSource != n || inTarget != n {
				return fmt.Errorf("%s: row counts differ: source %d, copied %d, target %d", t.name, inSource, n, inTarget)
			}
			out = append(out, TableCopy{Table: t.name, Rows: n})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	return out, nil
}

// checkForeignTables refuses, before Migrate creates anything, a target
// schema that holds tables but is not pairingd's (no schema_migrations):
// another application's database named by mistake.
func checkForeignTables(ctx context.Context, dst *Store) error {
	var tables []string
	var name string
	if err := eachRow(ctx, dst.writer, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() ORDER BY table_name`, func() { tables = append(tables, name) }, &name); err != nil {
		return fmt.Errorf("read the target's tables: %w", err)
	}
	if len(tables) > 0 && !slices.Contains(tables, "schema_migrations") {
		return fmt.Errorf("%w: it holds tables that are not pairingd's (%s); name a new database or schema", ErrTargetNotEmpty, strings.Join(tables, ", "))
	}
	return nil
}

// copyTableDef is one table as the target has it.
type copyTableDef struct {
	name string
	cols []copyColumn
}

type copyColumn struct {
	name     string
	pgType   string // information_schema data_type: bigint, text, bytea, boolean
	identity bool
}

// copyPlan lists the target's tables (without schema_migrations, which
// Migrate wrote), parents before the tables whose foreign keys point at
// them, and checks that the source has the same tables and columns.
func copyPlan(ctx context.Context, src *sql.Conn, tx *sql.Tx) ([]copyTableDef, error) {
	byName := map[string]*copyTableDef{}
	var table, col, typ, ident string
	if err := eachRow(ctx, tx, `SELECT table_name, column_name, data_type, is_identity
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'
		ORDER BY table_name, ordinal_position`, func() {
		t := byName[table]
		if t == nil {
			t = &copyTableDef{name: table}
			byName[table] = t
		}
		t.cols = append(t.cols, copyColumn{name: col, pgType: typ, identity: ident == "YES"})
	}, &table, &col, &typ, &ident); err != nil {
		return nil, fmt.Errorf("read the target's columns: %w", err)
	}

	parents := map[string][]string{}
	var child, parent string
	if err := eachRow(ctx, tx, `SELECT c.relname, p.relname
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid
		JOIN pg_class p ON p.oid = k.confrelid
		JOIN pg_namespace n ON n.oid = k.connamespace
		WHERE k.contype = 'f' AND n.nspname = current_schema()`, func() {
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}, &child, &parent); err != nil {
		return nil, fmt.Errorf("read the target's foreign keys: %w", err)
	}

	srcTables, err := sqliteColumns(ctx, src)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for name, t := range byName {
		cols, ok := srcTables[name]
		if !ok {
			diffs = append(diffs, "table "+name+" is missing from the source")
			continue
		}
		for _, c := range t.cols {
			if !slices.Contains(cols, c.name) {
				diffs = append(diffs, "column "+name+"."+c.name+" is missing from the source")
			}
		}
		if len(cols) != len(t.cols) {
			diffs = append(diffs, fmt.Sprintf("table %s has %d columns in the source, %d in the target", name, len(cols), len(t.cols)))
		}
	}
	for name := range srcTables {
		if byName[name] == nil {
			diffs = append(diffs, "table "+name+" is missing from the target")
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return nil, fmt.Errorf("the two schemas differ: %s", strings.Join(diffs, "; "))
	}

	// Parents first; ties in name order, so every copy runs the same way.
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	var order []copyTableDef
	done := map[string]bool{}
	var visit func(name string, depth int) error
	visit = func(name string, depth int) error {
		if done[name] {
			return nil
		}
		if depth > len(names) {
			return fmt.Errorf("the target's foreign keys form a cycle through %s", name)
		}
		ps := slices.Clone(parents[name])
		sort.Strings(ps)
		for _, p := range ps {
			if byName[p] == nil {
				return fmt.Errorf("%s references %s, which is not a table of the schema", name, p)
			}
			if err := visit(p, depth+1); err != nil {
				return err
			}
		}
		done[name] = true
		order = append(order, *byName[name])
		return nil
	}
	for _, name := range names {
		if err := visit(name, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// sqliteColumns lists the source's tables (without SQLite's own and
// schema_migrations) and their columns.
func sqliteColumns(ctx context.Context, src *sql.Conn) (map[string][]string, error) {
	out := map[string][]string{}
	var table, col string
	if err := eachRow(ctx, src, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'schema_migrations'`,
		func() { out[table] = append(out[table], col) }, &table, &col); err != nil {
		return nil, fmt.Errorf("read the source's columns: %w", err)
	}
	return out, nil
}

// eachRow runs a catalog query on db and, for each row, scans it into
// dest and calls fn.
func eachRow(ctx context.Context, db conn, query string, fn func(), dest ...any) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return translate(err)
		}
		fn()
	}
	return translate(rows.Err())
}

// copyTable streams the source's rows of t into the target in multi-row
// INSERTs and returns how many it wrote.
func copyTable(ctx context.Context, src *sql.Conn, tx *sql.Tx, t copyTableDef) (int64, error) {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = quoteIdent(c.name)
	}
	list := strings.Join(cols, ", ")
	rows, err := src.QueryContext(ctx, `SELECT `+list+` FROM `+quoteIdent(t.name)+` ORDER BY rowid`)
	if err != nil {
		return 0, fmt.Errorf("read: %w", translate(err))
	}
	defer rows.Close()

	batch := min(maxCopyBatch, 65535/len(t.cols))
	args := make([]any, 0, batch*len(t.cols))
	var n int64
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + quoteIdent(t.name) + ` (` + list + `) VALUES `)
		for i := range args {
			switch {
			case i%len(t.cols) == 0 && i > 0:
				b.WriteString("), (")
			case i == 0:
				b.WriteString("(")
			default:
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i+1))
		}
		b.WriteString(")")
		res, err := tx.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return fmt.Errorf("write: %w", translate(err))
		}
		got, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if want := int64(len(args) / len(t.cols)); got != want {
			return fmt.Errorf("write: %d of %d rows inserted", got, want)
		}
		n += got
		args = args[:0]
		return nil
	}
	vals := make([]any, len(t.cols))
	ptrs := make([]any, len(t.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("read: %w", translate(err))
		}
		for i, c := range t.cols {
			v, err := pgValue(vals[i], c.pgType)
			if err != nil {
				return n, fmt.Errorf("row %d, column %s: %w", n+int64(len(args)/len(t.cols))+1, c.name, err)
			}
			args = append(args, v)
		}
		if len(args) == batch*len(t.cols) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read: %w", translate(err))
	}
	return n, flush()
}

// pgValue converts a value the SQLite driver scanned into what the
// PostgreSQL column takes. SQLite keeps BOOLEAN as 0/1 and may hand a
// TEXT value back as bytes or a BLOB as text, depending on how it was
// written; NULL stays NULL.
func pgValue(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		}
	case "bigint", "integer", "smallint":
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case "text":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return slices.Clone(x), nil
		case string:
			return []byte(x), nil
		}
	default:
		return nil, fmt.Errorf("the target's type %s is not one the copy knows", pgType)
	}
	return nil, fmt.Errorf("a %T value does not fit the target's %s", v, pgType)
}

// resetSequences sets each identity column's sequence so that the next id
// it gives is one past the highest copied (1 for an empty table).
func resetSequences(ctx context.Context, tx *sql.Tx, t copyTableDef) error {
	for _, c := range t.cols {
		if !c.identity {
			continue
		}
		q := `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX(` + quoteIdent(c.name) + `), 0) + 1, false) FROM ` + quoteIdent(t.name)
		if _, err := tx.ExecContext(ctx, q, quoteIdent(t.name), c.name); err != nil {
			return fmt.Errorf("reset the sequence of %s: %w", c.name, translate(err))
		}
	}
	return nil
}

// quoteIdent quotes a catalog name for both engines.
func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
