//go:build !cgo

package store

import (
	"errors"
	"net/url"
	"strconv"

	"modernc.org/sqlite"
)

// Without cgo (no C compiler on the machine), SQLite is modernc.org/sqlite,
// the same library translated to Go: slower, but `go run` works with
// nothing but Go installed.
const sqliteDriverName = "sqlite"

// sqliteParams are the connection settings pairingd relies on, in the
// driver's DSN syntax.
func sqliteParams(readOnly bool) url.Values {
	p := url.Values{}
	p.Add("_pragma", "journal_mode(WAL)")
	p.Add("_pragma", "busy_timeout(10000)")
	p.Add("_pragma", "foreign_keys(1)")
	p.Add("_pragma", "synchronous(NORMAL)")
	p.Add("_pragma", "temp_store("+tempStore+")")
	p.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walAutoCheckpoint)+")")
	p.Set("_txlock", "immediate")
	if readOnly {
		p.Add("_pragma", "query_only(1)")
	}
	return p
}

// sqliteCodes returns an SQLite error's primary and extended result codes.
func sqliteCodes(err error) (code, extended int, ok bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0, 0, false
	}
	return se.Code() & 0xff, se.Code(), true
}
