package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pairingd/pairingd/pairing"
)

// translate turns driver errors into the errors pairing.Store promises:
// ErrNotFound, ErrRaced (unique index, or a PostgreSQL deadlock or
// serialization failure: the service decides again) and ErrUnavailable
// (the database cannot be reached or cannot write now). Other errors are
// wrapped as they are.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pairing.ErrNotFound), errors.Is(err, pairing.ErrRaced), errors.Is(err, pairing.ErrUnavailable):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return pairing.ErrNotFound
	case isUnique(err), isRetry(err):
		return fmt.Errorf("%w: %v", pairing.ErrRaced, err)
	case isUnstorableText(err):
		return fmt.Errorf("%w: text the database cannot store", pairing.ErrInvalid)
	case isUnavailable(err):
		return fmt.Errorf("%w: %v", pairing.ErrUnavailable, err)
	}
	return fmt.Errorf("store: %w", err)
}

// SQLite result codes (https://www.sqlite.org/rescode.html), the same
// whichever driver is built in.
const (
	sqliteBusy                 = 5
	sqliteLocked               = 6
	sqliteReadonly             = 8
	sqliteIOErr                = 10
	sqliteCorrupt              = 11
	sqliteFull                 = 13
	sqliteCantOpen             = 14
	sqliteProtocol             = 15
	sqliteNotADB               = 26
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

func isUnique(err error) bool {
	if _, ext, ok := sqliteCodes(err); ok {
		return ext == sqliteConstraintUnique || ext == sqliteConstraintPrimaryKey
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isUnstorableText: PostgreSQL refused a text value (a NUL, or bytes that
// are not UTF-8): bad input, not a failure of the database.
func isUnstorableText(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05")
}

// isRetry: PostgreSQL gave up one of two colliding transactions.
func isRetry(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

func isUnavailable(err error) bool {
	if code, _, ok := sqliteCodes(err); ok {
		switch code {
		case sqliteBusy, sqliteLocked, sqliteReadonly, sqliteIOErr, sqliteFull, sqliteCantOpen,
			sqliteCorrupt, sqliteNotADB, sqliteProtocol:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection, 53: resources, 57P: shutdown/crash, 25006: read-only.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			strings.HasPrefix(pe.Code, "57P") || pe.Code == "25006"
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "database is closed") || strings.Contains(err.Error(), "conn closed")
}
