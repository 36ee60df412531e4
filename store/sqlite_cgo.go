//go:build cgo

package store

import (
	"database/sql"
	"errors"
	"net/url"
	"strconv"

	"github.com/mattn/go-sqlite3"
)

// With cgo, SQLite is mattn/go-sqlite3 (the C library, fastest), registered
// under its own name so that every connection also gets the settings the
// driver has no DSN parameter for.
const sqliteDriverName = "sqlite3_pairingd"

func init() {
	sql.Register(sqliteDriverName, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec("PRAGMA temp_store = "+tempStore+"; PRAGMA wal_autocheckpoint = "+strconv.Itoa(walAutoCheckpoint), nil)
			return err
		},
	})
}

// sqliteParams are the connection settings pairingd relies on, in the
// driver's DSN syntax.
func sqliteParams(readOnly bool) url.Values {
	p := url.Values{}
	p.Set("_journal_mode", "WAL")
	p.Set("_busy_timeout", "10000")
	p.Set("_foreign_keys", "1")
	p.Set("_synchronous", "NORMAL")
	p.Set("_txlock", "immediate")
	// The driver keeps each connection's prepared statements (SQLite spends
	// most of a short query preparing it).
	p.Set("_stmt_cache_size", "128")
	if readOnly {
		p.Set("_query_only", "1")
	}
	return p
}

// sqliteCodes returns an SQLite error's primary and extended result codes.
func sqliteCodes(err error) (code, extended int, ok bool) {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return 0, 0, false
	}
	return int(se.Code), int(se.ExtendedCode), true
}
