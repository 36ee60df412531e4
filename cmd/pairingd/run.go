package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `pairingd links bot users (Telegram, Messenger) to website accounts.

Usage:
  pairingd [--config FILE] <command> [flags]

Commands:
  serve                         run the service (the default with no command)
  migrate                       apply database schema migrations and exit
  keys create --name NAME       create an API key; the key is the last line of output
  keys list                     list API keys (never the keys themselves)
  keys revoke ID|NAME           revoke an API key
  pins issue --channel NAME --external-id ID [--first-name ..] [--last-name ..] [--username ..] [--locale ..]
                                issue a BUID + PIN for a chat without sending it (JSON)
  links list [--after ID] [--limit N]
  links show USER_ID
  links unlink USER_ID
  messages failed [--limit N]   list failed notification deliveries, the most recent first
  messages retry DELIVERY_ID    queue a failed delivery again (attempts reset, due now)
  events failed [--limit N]     list site events the webhook gave up on
  events retry EVENT_ID         make a given-up site event pending again
  messenger setup --channel NAME
                                set Get Started, greeting and menu of a Messenger page
  clients create --name NAME --redirect-uri URI [--redirect-uri URI] [--initiate-login-uri URI] [--public]
                                register an OpenID Connect client; JSON on the last line
  clients list | clients revoke CLIENT_ID
  signing-keys rotate           new ID token signing key (the old one stays in the JWKS)
  version                       print the version

Without --config the embedded default runs: SQLite file pairingd.db in the
working directory, listening on 127.0.0.1:8080. Every config key can be set
with PAIRINGD_<PATH>, e.g. PAIRINGD_SERVER_LISTEN=0.0.0.0:8080.
`

// run is the whole program; main only wires the process to it, and tests
// call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("pairingd", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := global.String("config", getenv("PAIRINGD_CONFIG"), "config file (YAML)")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := global.Args()
	cmd := "serve"
	if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	// --config is also accepted after the command.
	rest, *configPath = extractConfigFlag(rest, *configPath)

	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}

	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)

	var cmdErr error
	switch cmd {
	case "serve":
		cmdErr = serve(ctx, cfg, log)
	case "migrate":
		cmdErr = withService(ctx, cfg, log, func(*store.Store, *pairing.Service) error {
			fmt.Fprintln(stdout, "migrations applied")
			return nil
		})
	case "keys":
		cmdErr = keysCommand(ctx, cfg, log, rest, stdout)
	case "pins":
		cmdErr = pinsCommand(ctx, cfg, log, rest, stdout)
	case "links":
		cmdErr = linksCommand(ctx, cfg, log, rest, stdout)
	case "messages":
		cmdErr = messagesCommand(ctx, cfg, log, rest, stdout)
	case "events":
		cmdErr = eventsCommand(ctx, cfg, log, rest, stdout)
	case "messenger":
		cmdErr = messengerCommand(ctx, cfg, log, rest, stdout)
	case "clients", "signing-keys":
		cmdErr = signInCommand(ctx, cfg, log, cmd, rest, stdout)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ue usageError
	switch {
	case cmdErr == nil:
		return 0
	case errors.As(cmdErr, &ue):
		fmt.Fprintln(stderr, cmdErr)
		return 2
	default:
		fmt.Fprintln(stderr, "error:", cmdErr)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func extractConfigFlag(args []string, current string) ([]string, string) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "--config" || a == "-config") && i+1 < len(args):
			current = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			current = a[strings.Index(a, "=")+1:]
		default:
			out = append(out, a)
		}
	}
	return out, current
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return "pairingd " + v
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, store.Config{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN, MaxOpenConns: cfg.Database.MaxOpenConns}, log)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return st, nil
}

// newService builds the pairing service on an open store. The server
// secret comes from config, or is generated once and kept in the database
// so that restarts (and other instances) keep PINs valid.
func newService(ctx context.Context, cfg Config, st *store.Store, log *slog.Logger) (*pairing.Service, error) {
	secret := []byte(cfg.Server.Secret)
	if len(secret) == 0 {
		var err error
		secret, err = st.ServerSecret(ctx, func() ([]byte, error) {
			b := make([]byte, 32)
			_, err := rand.Read(b)
			return b, err
		})
		if err != nil {
			return nil, fmt.Errorf("server secret: %w", err)
		}
	}
	p := cfg.Pairing
	return pairing.New(st, pairing.Config{
		Secret: secret, LinkURL: cfg.Site.LinkURL, PINLength: p.PINLength, PINTTL: p.PINTTL,
		MaxAttempts: p.MaxAttempts, LockDuration: p.LockDuration, GrantTTL: p.GrantTTL,
		MagicLink: p.MagicLink, MagicLinkTTL: p.MagicLinkTTL, ReissueInterval: p.ReissueInterval,
		ResendInterval: p.ResendInterval, KeyFailureBudget: p.KeyFailureBudget, KeyFailureWindow: p.KeyFailureWindow,
		DeepLinkTTL: p.DeepLinkTTL,
	}, pairing.WithLogger(log))
}

func withService(ctx context.Context, cfg Config, log *slog.Logger, fn func(*store.Store, *pairing.Service) error) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := newService(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	return fn(st, svc)
}

func keysCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: pairingd keys create --name NAME | keys list | keys revoke ID|NAME"}
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
		name := fs.String("name", "", "a name for the key (e.g. the site)")
		if err := fs.Parse(args[1:]); err != nil || *name == "" {
			return usageError{"usage: pairingd keys create --name NAME"}
		}
		return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
			k, secret, err := svc.CreateAPIKey(ctx, *name)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "created API key %d %q; it is shown only this once:\n%s\n", k.ID, k.Name, secret)
			return nil
		})
	case "list":
		return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
			keys, err := svc.ListAPIKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCREATED\tLAST USED\tREVOKED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, stamp(k.CreatedAt), stamp(k.LastUsedAt), stamp(k.RevokedAt))
			}
			return tw.Flush()
		})
	case "revoke":
		if len(args) != 2 {
			return usageError{"usage: pairingd keys revoke ID|NAME"}
		}
		return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
			if err := svc.RevokeAPIKey(ctx, args[1]); err != nil {
				if errors.Is(err, pairing.ErrNotFound) {
					return fmt.Errorf("no active key %q", args[1])
				}
				return err
			}
			fmt.Fprintf(out, "revoked %s\n", args[1])
			return nil
		})
	}
	return usageError{fmt.Sprintf("unknown keys command %q", args[0])}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func pinsCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "issue" {
		return usageError{"usage: pairingd pins issue --channel NAME --external-id ID [--first-name ..]"}
	}
	fs := flag.NewFlagSet("pins issue", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel name (as in config, e.g. telegram)")
	ext := fs.String("external-id", "", "chat id / PSID of the person")
	var p pairing.Profile
	fs.StringVar(&p.FirstName, "first-name", "", "")
	fs.StringVar(&p.LastName, "last-name", "", "")
	fs.StringVar(&p.Username, "username", "", "")
	fs.StringVar(&p.Locale, "locale", "", "")
	if err := fs.Parse(args[1:]); err != nil || *channel == "" || *ext == "" {
		return usageError{"usage: pairingd pins issue --channel NAME --external-id ID [--first-name ..]"}
	}
	return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
		pin, err := svc.IssuePIN(ctx, pairing.LeadKey{Channel: *channel, ExternalID: *ext}, p, pairing.IssueOptions{Force: true})
		if err != nil {
			return err
		}
		obj := map[string]any{"buid": pin.BUID, "pin": pin.PIN, "url": pin.URL, "expires_at": pin.ExpiresAt}
		if !pin.MagicExpiresAt.IsZero() {
			obj["magic_link_expires_at"] = pin.MagicExpiresAt
		}
		return json.NewEncoder(out).Encode(obj)
	})
}

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

func linksCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: pairingd links list [--after ID] [--limit N] | links show USER_ID | links unlink USER_ID"}
	}
	switch args[0] {
	case "list":
		fs := flag.NewFlagSet("links list", flag.ContinueOnError)
		after := fs.Int64("after", 0, "cursor printed by the previous page")
		limit := fs.Int("limit", 100, "links per page (max 1000)")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{"usage: pairingd links list [--after ID] [--limit N]"}
		}
		return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
			links, cursor, err := svc.ListLinks(ctx, *after, *limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
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
			if len(links) == *limit {
				fmt.Fprintf(out, "next page: pairingd links list --after %d\n", cursor)
			}
			return nil
		})
	case "show":
		if len(args) != 2 {
			return usageError{"usage: pairingd links show USER_ID"}
		}
		return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
			l, err := svc.GetLink(ctx, args[1])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(toLinkJSON(l))
		})
	case "unlink":
		if len(args) != 2 {
			return usageError{"usage: pairingd links unlink USER_ID"}
		}
		return withService(ctx, cfg, log, func(_ *store.Store, svc *pairing.Service) error {
			removed, err := svc.UnlinkUser(ctx, args[1], pairing.ActorOperator)
			if err != nil {
				return err
			}
			if removed {
				fmt.Fprintf(out, "unlinked %s\n", args[1])
			} else {
				fmt.Fprintf(out, "%s was not linked\n", args[1])
			}
			return nil
		})
	}
	return usageError{fmt.Sprintf("unknown links command %q", args[0])}
}
