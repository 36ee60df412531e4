package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

func pinsCommand(a *app) *cobra.Command {
	const usage = "usage: pairingd pins issue --channel NAME --external-id ID [--first-name ..]"
	var channel, ext string
	var p pairing.Profile
	issue := &cobra.Command{
		Use:   "issue --channel NAME --external-id ID",
		Short: "issue a BUID + PIN for a chat without sending it (JSON), as the bot does",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel == "" || ext == "" {
				return usageError{usage}
			}
			cfg, log, err := a.config()
			if err != nil {
				return err
			}
			if err := knownChannel(cfg, channel); err != nil {
				return err
			}
			return withService(cmd.Context(), cfg, log, func(_ *store.Store, svc *pairing.Service) error {
				pin, err := svc.IssuePIN(cmd.Context(), pairing.LeadKey{Channel: channel, ExternalID: ext}, p, pairing.IssueOptions{Force: true})
				if err != nil {
					return err
				}
				obj := map[string]any{"buid": pin.BUID, "pin": pin.PIN, "url": pin.URL, "expires_at": pin.ExpiresAt}
				if !pin.MagicExpiresAt.IsZero() {
					obj["magic_link_expires_at"] = pin.MagicExpiresAt
				}
				return json.NewEncoder(a.stdout).Encode(obj)
			})
		},
	}
	f := issue.Flags()
	f.StringVar(&channel, "channel", "", "channel name, as in the config's channels[].name (required)")
	f.StringVar(&ext, "external-id", "", "the person's id on the platform: Telegram chat id, Messenger PSID (required)")
	f.StringVar(&p.FirstName, "first-name", "", "the person's first name, as the platform gives it")
	f.StringVar(&p.LastName, "last-name", "", "the person's last name")
	f.StringVar(&p.Username, "username", "", "the person's username on the platform")
	f.StringVar(&p.Locale, "locale", "", "the person's language (e.g. en, de), for the chat texts")
	return group("pins", "issue PINs by hand", issue)
}

// knownChannel refuses a channel name that is not configured, so that a
// typo does not make leads nobody can reach. With no channel configured
// (trying pairingd without a bot) the channel types stand for channels.
func knownChannel(cfg Config, name string) error {
	var names []string
	for _, ch := range cfg.Channels {
		names = append(names, ch.Name())
	}
	what := "the configured channels are"
	if len(names) == 0 {
		for typ := range channelTypes {
			names = append(names, typ)
		}
		what = "no channel is configured; the channel types are"
	}
	slices.Sort(names)
	if slices.Contains(names, name) {
		return nil
	}
	return usageError{fmt.Sprintf("unknown channel %q: %s %s", name, what, strings.Join(names, ", "))}
}
