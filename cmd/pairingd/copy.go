package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/store"
)

func copyCommand(a *app) *cobra.Command {
	var from, to string
	c := &cobra.Command{
		Use:   "copy --from SQLITE_FILE [--to POSTGRES_DSN]",
		Short: "copy all data from a SQLite database into an empty PostgreSQL database",
		Long: `copy moves a deployment from SQLite to PostgreSQL. It migrates the PostgreSQL
database, refuses it unless every table is empty, and copies every table of
the SQLite database into it in one transaction, keeping ids (sequences go on
after them), then checks each table's row count before committing. No row
of the SQLite database is changed; it must be at this pairingd's schema
version (run pairingd migrate on it first).

Stop every pairingd that writes to the SQLite database first: rows written
after the copy started are not copied. Without --to, the configured
database is the target when it is PostgreSQL (database.driver=postgres and
database.dsn, e.g. from PAIRINGD_DATABASE_DSN_FILE), which keeps the
password off the command line.

The PIN server secret is not in the database: on SQLite it is the file
beside it (<database>.secret) unless pairing.secret or pairing.secret_file
is set. Give the PostgreSQL deployment the same secret
(PAIRINGD_PAIRING_SECRET_FILE=<database>.secret, or the same configured
value), or the PINs in flight at the move stop working.`,
		Args: noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageError{"usage: pairingd copy --from SQLITE_FILE [--to POSTGRES_DSN]"}
			}
			cfg, log, err := a.config()
			if err != nil {
				return err
			}
			target := store.Config{Driver: store.Postgres, DSN: to, MaxOpenConns: 2}
			if to == "" {
				if cfg.Database.Driver != store.Postgres {
					return usageError{"copy: no target: give --to POSTGRES_DSN, or configure database.driver=postgres and database.dsn"}
				}
				target.DSN = cfg.Database.DSN
			}
			// Opening a missing SQLite file would create an empty one.
			if _, err := os.Stat(store.SQLiteFile(from)); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("copy: no SQLite database at %s", store.SQLiteFile(from))
			} else if err != nil {
				return fmt.Errorf("copy: %w", err)
			}
			src, err := store.Open(cmd.Context(), store.Config{Driver: store.SQLite, DSN: from, MaxOpenConns: 1}, log)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := store.Open(cmd.Context(), target, log)
			if err != nil {
				return err
			}
			defer dst.Close()
			copied, err := src.CopyTo(cmd.Context(), dst)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TABLE\tROWS")
			var rows int64
			for _, t := range copied {
				fmt.Fprintf(w, "%s\t%d\n", t.Table, t.Rows)
				rows += t.Rows
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "copied %d rows in %d tables from %s to PostgreSQL; row counts checked\n", rows, len(copied), store.SQLiteFile(from))
			if len(cfg.Pairing.Secret) == 0 && cfg.Pairing.SecretFile == "" {
				fmt.Fprintf(a.stdout, "the server secret is not in the copy: give PostgreSQL the same one, e.g. PAIRINGD_PAIRING_SECRET_FILE=%s.secret\n", store.SQLiteFile(from))
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the SQLite database to copy: a file path or file: URI (required; its rows are only read)")
	c.Flags().StringVar(&to, "to", "", "the PostgreSQL database to fill, as a URL or key=value DSN (default: the configured database, when it is PostgreSQL)")
	return c
}
