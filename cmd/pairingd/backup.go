package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/store"
)

func backupCommand(a *app) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "backup --to FILE",
		Short: "copy a live SQLite database consistently into a new file",
		Long: `backup writes a consistent copy of the SQLite database to a new file while
pairingd keeps serving (SQLite's VACUUM INTO). It never overwrites a file.
To restore: stop pairingd, delete the database's -wal and -shm files, copy
the backup over the database file, start pairingd.

On PostgreSQL, back up with pg_dump.`,
		Args: noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usageError{"usage: pairingd backup --to FILE"}
			}
			cfg, log, err := a.config()
			if err != nil {
				return err
			}
			if cfg.Database.Driver == store.SQLite {
				// Opening a missing SQLite file would create an empty one.
				if _, err := os.Stat(store.SQLiteFile(cfg.Database.DSN)); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("backup: no database at %s", store.SQLiteFile(cfg.Database.DSN))
				}
			}
			// Opened without migrating: a backup taken before an upgrade
			// must be of the schema as it is.
			st, err := store.Open(cmd.Context(), store.Config{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN}, log)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Backup(cmd.Context(), to); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "backed up to %s\n", to)
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "the new file to write the copy to (required; never overwritten)")
	return c
}
