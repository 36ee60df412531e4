package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pairingd/pairingd/pairing"
)

// The SQLite database holds hashes an attacker could test offline, the
// audit trail and the queues: only the service's own user may read it.
// SQLite creates the -wal and -shm files with the permissions of the
// database file (unix VFS), so creating that file 0600 ourselves, before
// SQLite does with its default 0644 less the umask, covers all three.

// PrivateFileMode and PrivateDirMode are the modes of every file and
// directory pairingd creates for its state.
const (
	PrivateFileMode fs.FileMode = 0o600
	PrivateDirMode  fs.FileMode = 0o700
)

// SQLiteFile is the file a SQLite DSN names (a path or a file: URI), or ""
// for an in-memory database.
func SQLiteFile(dsn string) string {
	if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		return ""
	}
	dsn = strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn = dsn[:i]
	}
	return dsn
}

// sqliteCompanions are the files SQLite keeps beside a database in WAL mode.
var sqliteCompanions = []string{"", "-wal", "-shm", "-journal"}

// prepareSQLiteFile creates the database file 0600 when it is missing,
// and takes group and other permissions off the database and its companion
// files when an earlier release (or a wide umask) left them readable. A
// missing directory is not created: it is more likely a wrong path than a
// wish for a new, empty database.
func prepareSQLiteFile(path string, log *slog.Logger) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("open sqlite: the database's directory: %w (%w)", err, pairing.ErrUnavailable)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, PrivateFileMode)
	switch {
	case err == nil:
		// O_CREATE applies the umask, which can only take bits away from
		// 0600; Chmod makes the mode exact whatever the umask.
		err = errors.Join(f.Chmod(PrivateFileMode), f.Close())
		if err != nil {
			return fmt.Errorf("create database file: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create database file: %w", err)
	}
	for _, suffix := range sqliteCompanions {
		if err := RestrictFile(path+suffix, log); err != nil {
			return err
		}
	}
	return nil
}

// EnsurePrivateDir creates dir (and its parents) with mode 0700 when it
// does not exist (the directory of a new secret file). An existing directory is left as it is: it may be shared
// on purpose (the working directory, /var/lib).
func EnsurePrivateDir(dir string, log *slog.Logger) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("database directory: %w", err)
	}
	if err := os.MkdirAll(dir, PrivateDirMode); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	// MkdirAll applies the umask; the last element is ours to make exact.
	if err := os.Chmod(dir, PrivateDirMode); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	log.Info("created the database directory", "dir", dir, "mode", PrivateDirMode.String())
	return nil
}

// RestrictFile sets an existing file's mode to 0600 when group or others
// have any permission on it, with a log line; a missing file is fine.
func RestrictFile(path string, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check file mode: %w", err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, PrivateFileMode); err != nil {
		return fmt.Errorf("restrict %s to mode 0600: %w", path, err)
	}
	log.Warn("file was readable by other users; its mode is now 0600", "file", path, "was", fi.Mode().Perm().String())
	return nil
}
