package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// The operator's view of what was given up, and the way to try again:
// pairingd messages failed|retry (notification deliveries) and pairingd
// events failed|retry (site events the webhook gave up on).

const (
	messagesUsage = "usage: pairingd messages failed [--limit N] | messages retry DELIVERY_ID"
	eventsUsage   = "usage: pairingd events failed [--limit N] | events retry EVENT_ID"
	maxListLimit  = 1000
)

func messagesCommand(a *app) *cobra.Command {
	failed := failedCommand(a, "messages failed", "list failed notification deliveries, the most recent first",
		func(ctx context.Context, st *store.Store, limit int) (int, error) {
			ds, err := st.FailedDeliveries(ctx, limit)
			if err != nil {
				return 0, err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MESSAGE\tDELIVERY\tUSER_ID\tCHANNEL\tATTEMPTS\tFAILED_AT\tLAST_ERROR")
			for _, d := range ds {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%s\n", d.MessageID, d.ID, cell(d.UserID), cell(d.Channel),
					d.Attempts, stamp(d.FinishedAt), cell(d.LastError))
			}
			return len(ds), tw.Flush()
		})
	retry := &cobra.Command{
		Use:   "retry DELIVERY_ID",
		Short: "queue a failed delivery again (attempts reset, due now)",
		Args:  nArgs(1, messagesUsage),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := rowID(args[0], "retry DELIVERY_ID", messagesUsage)
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(st *store.Store) error {
				d, err := st.RetryFailedDelivery(cmd.Context(), id, time.Now())
				var nf *store.NotFailedError
				switch {
				case errors.Is(err, pairing.ErrNotFound):
					return fmt.Errorf("no delivery %d (its message may have been pruned)", id)
				case errors.As(err, &nf):
					return fmt.Errorf("delivery %d is %s, not failed: only a failed delivery can be retried", id, nf.State)
				case err != nil:
					return err
				}
				fmt.Fprintf(a.stdout, "delivery %d (message %d, %s, user %s) is queued again; a running pairingd sends it at its next poll\n",
					d.ID, d.MessageID, cell(d.Channel), cell(d.UserID))
				return nil
			})
		},
	}
	return group("messages", "list and retry notification deliveries that failed", failed, retry)
}

func eventsCommand(a *app) *cobra.Command {
	failed := failedCommand(a, "events failed", "list site events the webhook gave up on, the most recent first",
		func(ctx context.Context, st *store.Store, limit int) (int, error) {
			evs, err := st.FailedSiteEvents(ctx, limit)
			if err != nil {
				return 0, err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EVENT\tTYPE\tUSER_ID\tATTEMPTS\tCREATED_AT\tFAILED_AT\tLAST_ERROR")
			for _, e := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, cell(e.Type), cell(orDash(e.UserID)), e.Attempts,
					stamp(e.CreatedAt), stamp(e.FailedAt), cell(e.LastError))
			}
			return len(evs), tw.Flush()
		})
	retry := &cobra.Command{
		Use:   "retry EVENT_ID",
		Short: "make a given-up site event pending again (attempts reset, due now)",
		Args:  nArgs(1, eventsUsage),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := rowID(args[0], "retry EVENT_ID", eventsUsage)
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(st *store.Store) error {
				e, err := st.RetryFailedSiteEvent(cmd.Context(), id, time.Now())
				var nf *store.NotFailedError
				switch {
				case errors.Is(err, pairing.ErrNotFound):
					return fmt.Errorf("no site event %d (it may have been pruned after jobs.site_events.retention)", id)
				case errors.As(err, &nf):
					return fmt.Errorf("site event %d is %s, not failed: only a failed event can be retried", id, nf.State)
				case err != nil:
					return err
				}
				fmt.Fprintf(a.stdout, "site event %d (%s, user %s) is pending again; a running pairingd with site.webhook_url sends it at its next poll\n",
					e.ID, cell(e.Type), cell(orDash(e.UserID)))
				return nil
			})
		},
	}
	return group("events", "list and retry site events the webhook gave up on", failed, retry)
}

// failedCommand is the "failed" listing of a group: no arguments, --limit
// 1..1000. list prints up to limit rows and says how many it printed; a
// full page gets a hint to ask for more.
func failedCommand(a *app, name, short string, list func(context.Context, *store.Store, int) (int, error)) *cobra.Command {
	usage := fmt.Sprintf("usage: pairingd %s [--limit N] (N: 1..%d)", name, maxListLimit)
	var limit int
	c := &cobra.Command{
		Use:   "failed",
		Short: short,
		Args:  nArgs(0, usage),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > maxListLimit {
				return usageError{usage}
			}
			return a.withStore(cmd, func(st *store.Store) error {
				n, err := list(cmd.Context(), st, limit)
				if err == nil && n == limit && limit < maxListLimit {
					fmt.Fprintf(a.stdout, "the %d most recent shown; more: pairingd %s --limit %d\n", n, name, min(limit*10, maxListLimit))
				}
				return err
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 100, fmt.Sprintf("rows to show, the most recent first (1..%d)", maxListLimit))
	return c
}

// rowID parses the one positive id a "retry" takes.
func rowID(arg, what, usage string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return 0, usageError{fmt.Sprintf("%s: %q is not an id (a positive integer)\n%s", what, arg, usage)}
	}
	return id, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// cell makes a free text (a platform's error words) one table cell: no
// tabs or line breaks.
func cell(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\t' || r == '\n' || r == '\r' }), " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
