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
The copy is mode 0600. To restore: stop pairingd, delete the database's
-wal and -shm files, copy the backup over the database file, start
pairingd. The server secret (the file beside the database) is not in the
copy: back it up on its own, or PINs issued before a restore stop working.

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
			if f := store.DefaultSecretFile(cfg.Database); f != "" && len(cfg.Pairing.Secret) == 0 && cfg.Pairing.SecretFile == "" {
				// The secret is kept apart from the database on purpose.
				fmt.Fprintf(a.stdout, "the server secret is not in the backup: keep %s apart from it, as private\n", f)
			}
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "the new file to write the copy to (required; never overwritten)")
	return c
}
