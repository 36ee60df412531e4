package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

type linkJSON struct {
	UserID   string     `json:"user_id"`
	PersonID int64      `json:"person_id"`
	LinkedAt time.Time  `json:"linked_at"`
	Leads    []leadJSON `json:"leads"`
}

type leadJSON struct {
	Channel    string `json:"channel"`
	ExternalID string `json:"external_id"`
	pairing.Profile
	Blocked bool `json:"blocked"`
}

func toLinkJSON(l pairing.Link) linkJSON {
	j := linkJSON{UserID: l.UserID, PersonID: l.PersonID, LinkedAt: l.LinkedAt, Leads: []leadJSON{}}
	for _, ld := range l.Leads {
		j.Leads = append(j.Leads, leadJSON{Channel: ld.Channel, ExternalID: ld.ExternalID, Profile: ld.Profile, Blocked: ld.Blocked})
	}
	return j
}

func linksCommand(a *app) *cobra.Command {
	var after int64
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "list linked site users, a page at a time",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd, func(_ *store.Store, svc *pairing.Service) error {
				links, cursor, err := svc.ListLinks(cmd.Context(), after, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER_ID\tPERSON\tLINKED_AT\tCHANNELS")
				for _, l := range links {
					var chans []string
					for _, ld := range l.Leads {
						chans = append(chans, ld.Channel)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", l.UserID, l.PersonID, stamp(l.LinkedAt), strings.Join(chans, ","))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(links) == limit {
					fmt.Fprintf(a.stdout, "next page: pairingd links list --after %d\n", cursor)
				}
				return nil
			})
		},
	}
	list.Flags().Int64Var(&after, "after", 0, "cursor printed by the previous page")
	list.Flags().IntVar(&limit, "limit", 100, "links per page (max 1000)")

	show := &cobra.Command{
		Use:   "show USER_ID",
		Short: "show a site user's link and chats (JSON)",
		Args:  nArgs(1, "usage: pairingd links show USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withService(cmd, func(_ *store.Store, svc *pairing.Service) error {
				l, err := svc.GetLink(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(toLinkJSON(l))
			})
		},
	}

	unlink := &cobra.Command{
		Use:   "unlink USER_ID",
		Short: "unlink a site user from every chat",
		Args:  nArgs(1, "usage: pairingd links unlink USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withService(cmd, func(_ *store.Store, svc *pairing.Service) error {
				removed, err := svc.UnlinkUser(cmd.Context(), args[0], pairing.ActorOperator)
				if err != nil {
					return err
				}
				if removed {
					fmt.Fprintf(a.stdout, "unlinked %s\n", args[0])
				} else {
					fmt.Fprintf(a.stdout, "%s was not linked\n", args[0])
				}
				return nil
			})
		},
	}
	return group("links", "list, show and remove links between site users and chats", list, show, unlink)
}
