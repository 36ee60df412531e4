package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

func keysCommand(a *app) *cobra.Command {
	var name string
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "create an API key; the key is the last line of output",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageError{"usage: pairingd keys create --name NAME"}
			}
			return a.withService(cmd, func(_ *store.Store, svc *pairing.Service) error {
				k, secret, err := svc.CreateAPIKey(cmd.Context(), name)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "created API key %d %q; it is shown only this once:\n%s\n", k.ID, k.Name, secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name for the key, e.g. the site (required)")

	list := &cobra.Command{
		Use:   "list",
		Short: "list API keys (never the keys themselves); LAST USED is kept to about a minute",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd, func(_ *store.Store, svc *pairing.Service) error {
				keys, err := svc.ListAPIKeys(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCREATED\tLAST USED\tREVOKED")
				for _, k := range keys {
					fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, stamp(k.CreatedAt), stamp(k.LastUsedAt), stamp(k.RevokedAt))
				}
				return tw.Flush()
			})
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "revoke an API key by id, or every active key of that name",
		Args:  nArgs(1, "usage: pairingd keys revoke ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withService(cmd, func(_ *store.Store, svc *pairing.Service) error {
				if err := svc.RevokeAPIKey(cmd.Context(), args[0]); err != nil {
					if errors.Is(err, pairing.ErrNotFound) {
						return fmt.Errorf("no active key %q", args[0])
					}
					return err
				}
				fmt.Fprintf(a.stdout, "revoked %s\n", args[0])
				return nil
			})
		},
	}
	return group("keys", "create, list and revoke the site's API keys", create, list, revoke)
}
