package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/store"
)

func serveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "run the service (the default with no command)",
		Args:  noCommand,
		RunE:  a.serve,
	}
}

func (a *app) serve(cmd *cobra.Command, _ []string) error {
	cfg, log, err := a.config()
	if err != nil {
		return err
	}
	return serve(cmd.Context(), cfg, log)
}

func migrateCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "apply database schema migrations and exit",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// No service: migrating needs no server secret (on PostgreSQL,
			// `secret export` may have to run after it).
			return a.withStore(cmd, func(*store.Store) error {
				fmt.Fprintln(a.stdout, "migrations applied")
				return nil
			})
		},
	}
}
