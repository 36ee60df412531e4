package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrBackupExists: the backup's target file already exists. A backup never
// overwrites a file, which may be the previous good backup.
var ErrBackupExists = errors.New("the backup file already exists")

// Backup writes a consistent copy of a SQLite database to path with VACUUM
// INTO, while the service keeps running: it reads one snapshot of the
// database, so writes made meanwhile are either wholly in the copy or not
// at all. It runs on the writer connection (the readers are query-only, which
// VACUUM INTO refuses); it takes only a read snapshot of the file, so the
// writers of other processes, such as a running pairingd serve, go on.
// The copy is a plain database file (no WAL beside it). PostgreSQL is backed
// up with its own tools (pg_dump).
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.driver != SQLite {
		return errors.New("backup: the database is PostgreSQL: back it up with pg_dump (e.g. pg_dump --format=custom --file=pairingd.dump DSN) or your provider's snapshots")
	}
	// The copy holds what the database holds: it is created 0600 here,
	// exclusively (never over an existing file), and VACUUM INTO fills the
	// empty file, keeping its mode.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, PrivateFileMode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("backup: %s: %w", path, ErrBackupExists)
	} else if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := errors.Join(f.Chmod(PrivateFileMode), f.Close()); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := s.writer.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("backup: %w", translate(err))
	}
	return nil
}
