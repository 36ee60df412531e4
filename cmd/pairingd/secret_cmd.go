package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// secretCommand moves the server secret an earlier release kept in the
// database to where this release reads it. On SQLite the first start does
// that by itself; on PostgreSQL the operator exports it, puts the file on
// every instance, and starts them.
func secretCommand(a *app) *cobra.Command {
	var to string
	export := &cobra.Command{
		Use:   "export --to FILE",
		Short: "write the server secret an earlier release stored in the database to a new 0600 file",
		Long: `export writes the server secret that an earlier release kept in the database's
settings table to FILE (mode 0600, never over an existing file), in the form
pairing.secret and PAIRINGD_PAIRING_SECRET_FILE read. Configure that file on
every instance and start them: the first start deletes the stored copy, and
PINs and sign-in tokens issued before stay valid. It runs without the
server secret being configured (that is what it is for).`,
		Args: noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usageError{"usage: pairingd secret export --to FILE"}
			}
			return a.withStore(cmd, func(st *store.Store) error {
				secret, err := st.LegacyServerSecret(cmd.Context())
				if errors.Is(err, pairing.ErrNotFound) {
					return errors.New("the database holds no server secret: nothing to export (it was moved out already, or never stored)")
				}
				if err != nil {
					return err
				}
				if err := store.CreateSecretFile(to, secret); err != nil {
					if errors.Is(err, fs.ErrExist) {
						return fmt.Errorf("%s exists; it is never overwritten", to)
					}
					return err
				}
				fmt.Fprintf(a.stdout, "wrote the server secret to %s (mode 0600); set PAIRINGD_PAIRING_SECRET_FILE=%s on every instance\n", to, to)
				return nil
			})
		},
	}
	export.Flags().StringVar(&to, "to", "", "the new file to write the secret to (required; never overwritten)")

	forget := &cobra.Command{
		Use:   "forget",
		Short: "delete the server secret an earlier release stored in the database",
		Long: `forget deletes the server secret an earlier release kept in the database,
for when a different secret is configured on purpose: PINs and sign-in
tokens issued with the stored one stop working.`,
		Args: noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd, func(st *store.Store) error {
				gone, err := st.ForgetLegacyServerSecret(cmd.Context(), nil)
				if err != nil {
					return err
				}
				if !gone {
					fmt.Fprintln(a.stdout, "the database holds no server secret")
					return nil
				}
				fmt.Fprintln(a.stdout, "deleted the server secret stored in the database")
				return nil
			})
		},
	}
	return group("secret", "move the server secret of an earlier release out of the database", export, forget)
}
