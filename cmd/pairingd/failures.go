package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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

func messagesCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{messagesUsage}
	}
	switch args[0] {
	case "failed":
		limit, err := listLimit("messages failed", args[1:])
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, log, func(st *store.Store) error {
			ds, err := st.FailedDeliveries(ctx, limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MESSAGE\tDELIVERY\tUSER_ID\tCHANNEL\tATTEMPTS\tFAILED_AT\tLAST_ERROR")
			for _, d := range ds {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%s\t%s\n", d.MessageID, d.ID, cell(d.UserID), cell(d.Channel),
					d.Attempts, stamp(d.FinishedAt), cell(d.LastError))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			moreHint(out, len(ds), limit, "messages failed")
			return nil
		})
	case "retry":
		id, err := rowID(args[1:], "retry DELIVERY_ID", messagesUsage)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, log, func(st *store.Store) error {
			d, err := st.RetryFailedDelivery(ctx, id, time.Now())
			var nf *store.NotFailedError
			switch {
			case errors.Is(err, pairing.ErrNotFound):
				return fmt.Errorf("no delivery %d (its message may have been pruned)", id)
			case errors.As(err, &nf):
				return fmt.Errorf("delivery %d is %s, not failed: only a failed delivery can be retried", id, nf.State)
			case err != nil:
				return err
			}
			fmt.Fprintf(out, "delivery %d (message %d, %s, user %s) is queued again; a running pairingd sends it at its next poll\n",
				d.ID, d.MessageID, cell(d.Channel), cell(d.UserID))
			return nil
		})
	}
	return usageError{fmt.Sprintf("unknown messages command %q\n%s", args[0], messagesUsage)}
}

func eventsCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{eventsUsage}
	}
	switch args[0] {
	case "failed":
		limit, err := listLimit("events failed", args[1:])
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, log, func(st *store.Store) error {
			evs, err := st.FailedSiteEvents(ctx, limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EVENT\tTYPE\tUSER_ID\tATTEMPTS\tCREATED_AT\tFAILED_AT\tLAST_ERROR")
			for _, e := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, cell(e.Type), cell(orDash(e.UserID)), e.Attempts,
					stamp(e.CreatedAt), stamp(e.FailedAt), cell(e.LastError))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			moreHint(out, len(evs), limit, "events failed")
			return nil
		})
	case "retry":
		id, err := rowID(args[1:], "retry EVENT_ID", eventsUsage)
		if err != nil {
			return err
		}
		return withStore(ctx, cfg, log, func(st *store.Store) error {
			e, err := st.RetryFailedSiteEvent(ctx, id, time.Now())
			var nf *store.NotFailedError
			switch {
			case errors.Is(err, pairing.ErrNotFound):
				return fmt.Errorf("no site event %d (it may have been pruned after jobs.site_events.retention)", id)
			case errors.As(err, &nf):
				return fmt.Errorf("site event %d is %s, not failed: only a failed event can be retried", id, nf.State)
			case err != nil:
				return err
			}
			fmt.Fprintf(out, "site event %d (%s, user %s) is pending again; a running pairingd with site.webhook_url sends it at its next poll\n",
				e.ID, cell(e.Type), cell(orDash(e.UserID)))
			return nil
		})
	}
	return usageError{fmt.Sprintf("unknown events command %q\n%s", args[0], eventsUsage)}
}

// withStore runs fn on the opened (and migrated) database.
func withStore(ctx context.Context, cfg Config, log *slog.Logger, fn func(*store.Store) error) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// listLimit parses the flags of a "failed" listing: --limit 1..1000.
func listLimit(name string, args []string) (int, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	limit := fs.Int("limit", 100, "rows to show, the most recent first (max 1000)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *limit < 1 || *limit > maxListLimit {
		return 0, usageError{fmt.Sprintf("usage: pairingd %s [--limit N] (N: 1..%d)", name, maxListLimit)}
	}
	return *limit, nil
}

// rowID parses the one positive id a "retry" takes.
func rowID(args []string, what, usage string) (int64, error) {
	if len(args) != 1 {
		return 0, usageError{usage}
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id < 1 {
		return 0, usageError{fmt.Sprintf("%s: %q is not an id (a positive integer)\n%s", what, args[0], usage)}
	}
	return id, nil
}

func moreHint(out io.Writer, n, limit int, cmd string) {
	if n == limit && limit < maxListLimit {
		fmt.Fprintf(out, "the %d most recent shown; more: pairingd %s --limit %d\n", n, cmd, min(limit*10, maxListLimit))
	}
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
