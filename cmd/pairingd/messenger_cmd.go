package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// messengerCommand runs `pairingd messenger setup --channel NAME`: it sets
// the Page's greeting, Get Started button and persistent menu through the
// Graph API's messenger_profile, in every shipped locale.
func messengerCommand(a *app) *cobra.Command {
	var channel string
	setup := &cobra.Command{
		Use:   "setup --channel NAME",
		Short: "set the greeting, Get Started button and persistent menu of a Messenger page",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel == "" {
				return usageError{"usage: pairingd messenger setup --channel NAME"}
			}
			cfg, log, err := a.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			texts, err := templates.Load(cfg.Templates.Dir, cfg.Templates.FallbackLocale)
			if err != nil {
				return err
			}
			return withService(ctx, cfg, log, func(st *store.Store, svc *pairing.Service) error {
				// The CLI takes no webhooks: the inbox is never run here.
				var pages []messenger.PageConfig
				for _, ch := range cfg.Channels {
					if p, ok := ch.Settings.(*messenger.PageConfig); ok {
						pages = append(pages, *p)
					}
				}
				if !slices.ContainsFunc(pages, func(p messenger.PageConfig) bool { return p.Name == channel }) {
					return usageError{fmt.Sprintf("no messenger channel named %q in the configuration", channel)}
				}
				env := channelEnv{cfg: cfg, svc: svc, st: st, texts: texts, log: log, inbox: inboundWorker(cfg, st, log, svc.Config().Secret)}
				hub, err := messengerHub(env, pages)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if err := hub.SetupProfile(ctx, channel); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "messenger profile of %s updated (greeting, get started, persistent menu)\n", channel)
				return nil
			})
		},
	}
	setup.Flags().StringVar(&channel, "channel", "", "the messenger channel's name, as in the config (required)")
	return group("messenger", "set up Messenger pages", setup)
}
