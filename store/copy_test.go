package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// copyRows are the ids of the rows fillEveryTable writes: every integer
// column of a row holds its id, so foreign keys point at the rows of the
// same id in the parent tables.
var copyRows = []int64{3, 7}

// fillEveryTable writes two rows into every table of a migrated SQLite
// store, read from its catalog so that a table added later is filled
// too: row 3 has every column set (booleans true), row 7 has NULL in
// every nullable column and false booleans. Texts hold non-ASCII, blobs a
// NUL and bytes that are not UTF-8.
func fillEveryTable(t *testing.T, st *store.Store, boolCols map[string]bool) {
	t.Helper()
	db := store.RawDB(st)
	tables := sqliteTables(t, db)
	// The rows are consistent by construction; the order they are
	// written in is not.
	if _, err := db.Exec(`PRAGMA foreign_keys = OFF`); err != nil {
		t.Fatal(err)
	}
	defer db.Exec(`PRAGMA foreign_keys = ON`)
	for _, table := range tables {
		rows, err := db.Query(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		type col struct {
			name, typ    string
			notNull, key bool
		}
		var cols []col
		for rows.Next() {
			var c col
			var notNull, pk int
			if err := rows.Scan(&c.name, &c.typ, &notNull, &pk); err != nil {
				t.Fatal(err)
			}
			c.notNull, c.key = notNull == 1, pk > 0
			cols = append(cols, c)
		}
		rows.Close()
		for _, id := range copyRows {
			names := make([]string, len(cols))
			marks := make([]string, len(cols))
			args := make([]any, len(cols))
			for i, c := range cols {
				names[i], marks[i] = `"`+c.name+`"`, "?"
				full := id == copyRows[0] || c.notNull || c.key
				switch typ := strings.ToUpper(c.typ); {
				case !full:
					args[i] = nil
				case typ == "BOOLEAN" || boolCols[table+"."+c.name]:
					args[i] = id == copyRows[0]
				case strings.Contains(typ, "INT"):
					args[i] = id
				case typ == "BLOB":
					args[i] = []byte{byte(id), 0, 0xff, 0xfe, 'x'}
				case typ == "TEXT":
					args[i] = fmt.Sprintf("%s.%s #%d: grüße, 🙂", table, c.name, id)
				default:
					t.Fatalf("%s.%s: a column type the test does not know: %s", table, c.name, c.typ)
				}
			}
			q := `INSERT INTO "` + table + `" (` + strings.Join(names, ", ") + `) VALUES (` + strings.Join(marks, ", ") + `)`
			if _, err := db.Exec(q, args...); err != nil {
				t.Fatalf("fill %s: %v", table, err)
			}
		}
	}
}

func sqliteTables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	if len(out) < 10 {
		t.Fatalf("only %d tables in the SQLite schema: %v", len(out), out)
	}
	return out
}

// pgBooleans names the boolean columns of the PostgreSQL schema as
// table.column: SQLite declares some of them INTEGER.
func pgBooleans(t *testing.T, db *sql.DB) map[string]bool {
	t.Helper()
	rows, err := db.Query(`SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND data_type = 'boolean'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		out[table+"."+col] = true
	}
	if len(out) == 0 {
		t.Fatal("no boolean column in the PostgreSQL schema")
	}
	return out
}

// tableDump reads every row of table, each value made comparable across
// engines (SQLite's 0/1 booleans as bool, texts as string, NULL as nil),
// sorted.
func tableDump(t *testing.T, db *sql.DB, table string, boolCols map[string]bool) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM "` + table + `"`)
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			if n, ok := v.(int64); ok && boolCols[table+"."+cols[i]] {
				v = n == 1
			}
			fields[i] = fmt.Sprintf("%s=%#v", cols[i], v)
		}
		sort.Strings(fields) // column order differs where a column was added later
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestCopyToCopiesEveryTableAndResetsSequences(t *testing.T) {
	src := openSQLite(t, filepath.Join(t.TempDir(), "src.db"))
	defer src.Close()
	dst := storetest.Postgres(t)
	boolCols := pgBooleans(t, store.RawDB(dst))
	fillEveryTable(t, src, boolCols)

	copied, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	srcDB, dstDB := store.RawDB(src), store.RawDB(dst)
	tables := sqliteTables(t, srcDB)
	if len(copied) != len(tables) {
		t.Fatalf("copied %d tables, the schema has %d: %+v", len(copied), len(tables), copied)
	}
	position := map[string]int{}
	for i, c := range copied {
		position[c.Table] = i
		if c.Rows != int64(len(copyRows)) {
			t.Errorf("%s: %d rows copied, want %d", c.Table, c.Rows, len(copyRows))
		}
	}
	// Parents are copied before their children.
	for _, pair := range [][2]string{{"persons", "leads"}, {"persons", "web_users"}, {"web_users", "grants"}, {"outbox_messages", "outbox_deliveries"}} {
		if position[pair[0]] > position[pair[1]] {
			t.Errorf("%s copied after %s", pair[0], pair[1])
		}
	}

	for _, table := range tables {
		want, got := tableDump(t, srcDB, table, boolCols), tableDump(t, dstDB, table, boolCols)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s differs after the copy:\nsource %q\ntarget %q", table, want, got)
		}
	}

	// Every identity sequence continues after the highest copied id.
	seqs, err := dstDB.Query(`SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var identities [][2]string
	for seqs.Next() {
		var tc [2]string
		seqs.Scan(&tc[0], &tc[1])
		identities = append(identities, tc)
	}
	seqs.Close()
	if len(identities) < 5 {
		t.Fatalf("only %d identity columns found: %v", len(identities), identities)
	}
	for _, tc := range identities {
		var next int64
		if err := dstDB.QueryRow(`SELECT nextval(pg_get_serial_sequence($1, $2))`, tc[0], tc[1]).Scan(&next); err != nil {
			t.Fatal(err)
		}
		if want := copyRows[len(copyRows)-1] + 1; next != want {
			t.Errorf("%s.%s: next id %d, want %d", tc[0], tc[1], next, want)
		}
	}
	var id int64
	if err := dstDB.QueryRow(`INSERT INTO persons (created_at) VALUES (1) RETURNING id`).Scan(&id); err != nil || id <= copyRows[len(copyRows)-1] {
		t.Fatalf("a new person after the copy: id %d, %v", id, err)
	}
}

func TestCopyToRefusesATargetWithData(t *testing.T) {
	src := openSQLite(t, filepath.Join(t.TempDir(), "src.db"))
	defer src.Close()
	dst := storetest.Postgres(t)
	fillEveryTable(t, src, pgBooleans(t, store.RawDB(dst)))
	if _, err := dst.CreateAPIKey(ctx, pairing.APIKey{Name: "already-here", Prefix: "pk_x", Hash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := src.CopyTo(ctx, dst)
	if !errors.Is(err, store.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "api_keys") {
		t.Fatalf("copy into a used database: %v, want ErrTargetNotEmpty naming api_keys", err)
	}
	for table, want := range map[string]int{"api_keys": 1, "persons": 0, "settings": 0} {
		var n int
		if err := store.RawDB(dst).QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil || n != want {
			t.Errorf("%s after the refused copy: %d rows (%v), want %d", table, n, err, want)
		}
	}
}

func TestCopyToRefusesAnOlderSource(t *testing.T) {
	src := openSQLite(t, filepath.Join(t.TempDir(), "src.db"))
	defer src.Close()
	dst := storetest.Postgres(t)
	fillEveryTable(t, src, pgBooleans(t, store.RawDB(dst)))
	if _, err := store.RawDB(src).Exec(`DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	_, err := src.CopyTo(ctx, dst)
	if err == nil || !strings.Contains(err.Error(), "pairingd migrate") {
		t.Fatalf("copy of a database one migration behind: %v, want a refusal that says to migrate", err)
	}
	var n int
	if err := store.RawDB(dst).QueryRow(`SELECT COUNT(*) FROM persons`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("persons after the refused copy: %d (%v)", n, err)
	}
}

func TestCopyToRefusesOtherEngines(t *testing.T) {
	a := openSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	defer a.Close()
	b := openSQLite(t, filepath.Join(t.TempDir(), "b.db"))
	defer b.Close()
	if _, err := a.CopyTo(ctx, b); err == nil || !strings.Contains(err.Error(), "SQLite to PostgreSQL only") {
		t.Fatalf("SQLite to SQLite: %v", err)
	}
}

// TestCopyToRefusesAnotherApplicationsSchema: a target schema with tables
// that are not pairingd's is refused before anything is created in it.
func TestCopyToRefusesAnotherApplicationsSchema(t *testing.T) {
	src := openSQLite(t, filepath.Join(t.TempDir(), "src.db"))
	defer src.Close()
	dsn := storetest.PostgresDSN(t)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE invoices (id BIGINT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	dst, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := src.CopyTo(ctx, dst); !errors.Is(err, store.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "invoices") {
		t.Fatalf("copy into another application's schema: %v", err)
	}
	var n int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("tables in the target after the refusal: %d (%v), want only invoices", n, err)
	}
}
