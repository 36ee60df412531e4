package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	oidcapi "github.com/pairingd/pairingd/api/oidc"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// OpenID Connect clients (the sites that sign people in) and the signing
// keys. The parsing is here; the work is in functions that take parsed
// values.

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// newClient is what `clients create` registers.
type newClient struct {
	Name             string
	RedirectURIs     []string
	InitiateLoginURI string
	Public           bool
}

// createdClient is the JSON line `clients create` prints last.
type createdClient struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	Public       bool     `json:"public"`
}

func clientsCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	const use = "usage: pairingd clients create --name NAME --redirect-uri URI [--redirect-uri URI] [--initiate-login-uri URI] [--public] | clients list | clients revoke CLIENT_ID"
	if len(args) == 0 {
		return usageError{use}
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("clients create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var nc newClient
		var uris stringList
		fs.StringVar(&nc.Name, "name", "", "the site's name, shown in the chat")
		fs.Var(&uris, "redirect-uri", "an exact redirect URI (repeatable)")
		fs.StringVar(&nc.InitiateLoginURI, "initiate-login-uri", "", "where the site starts a sign-in")
		fs.BoolVar(&nc.Public, "public", false, "a client without secret (single-page or mobile app)")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
			return usageError{use}
		}
		nc.RedirectURIs = uris
		return withStore(ctx, cfg, log, func(st *store.Store) error {
			c, err := createClient(ctx, st, nc, time.Now().UTC())
			if err != nil {
				return err
			}
			b, _ := json.Marshal(c)
			if c.ClientSecret != "" {
				fmt.Fprintln(out, "created client; the secret is shown only this once:")
			}
			fmt.Fprintln(out, string(b))
			return nil
		})
	case "list":
		return withStore(ctx, cfg, log, func(st *store.Store) error { return listClients(ctx, st, out) })
	case "revoke":
		if len(args) != 2 {
			return usageError{use}
		}
		return withStore(ctx, cfg, log, func(st *store.Store) error {
			if err := st.RevokeOIDCClient(ctx, args[1], time.Now().UTC()); err != nil {
				if errors.Is(err, pairing.ErrNotFound) {
					return fmt.Errorf("no active client %q", args[1])
				}
				return err
			}
			fmt.Fprintf(out, "revoked client %s\n", args[1])
			return nil
		})
	}
	return usageError{use}
}

// createClient validates and stores a client; only the SHA-256 of the
// secret is kept.
func createClient(ctx context.Context, st *store.Store, nc newClient, now time.Time) (createdClient, error) {
	name, err := pairing.NormalizeDisplayName(nc.Name)
	if err != nil || name == "" {
		return createdClient{}, usageError{"--name must be 1..64 characters without control characters"}
	}
	if len(nc.RedirectURIs) == 0 {
		return createdClient{}, usageError{"at least one --redirect-uri is needed"}
	}
	for _, u := range nc.RedirectURIs {
		if err := checkRedirectURI(u, nc.Public); err != nil {
			return createdClient{}, usageError{fmt.Sprintf("--redirect-uri %q: %v", u, err)}
		}
	}
	if nc.InitiateLoginURI != "" {
		if u, err := url.Parse(nc.InitiateLoginURI); err != nil || u.Scheme != "https" && !loopback(u) {
			return createdClient{}, usageError{"--initiate-login-uri must be an https URL"}
		}
	}
	id, err := randomString(16)
	if err != nil {
		return createdClient{}, err
	}
	rec := store.OIDCClient{ID: id, Name: name, RedirectURIs: nc.RedirectURIs, InitiateLoginURI: nc.InitiateLoginURI, Public: nc.Public, CreatedAt: now}
	out := createdClient{ClientID: id, Name: name, RedirectURIs: nc.RedirectURIs, Public: nc.Public}
	if !nc.Public {
		if out.ClientSecret, err = randomString(32); err != nil {
			return createdClient{}, err
		}
		h := sha256.Sum256([]byte(out.ClientSecret))
		rec.SecretHash = h[:]
	}
	return out, st.CreateOIDCClient(ctx, rec)
}

// checkRedirectURI: absolute, no fragment; http only to a loopback host;
// custom schemes (mobile apps) only for public clients.
func checkRedirectURI(raw string, public bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "" || raw != strings.TrimSpace(raw):
		return errors.New("must be an absolute URI")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && loopback(u):
		return nil
	case u.Scheme == "http":
		return errors.New("http is allowed only for localhost and loopback addresses")
	case !public:
		return errors.New("a confidential client needs an https URI")
	}
	return nil
}

func loopback(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func listClients(ctx context.Context, st *store.Store, out io.Writer) error {
	cs, err := st.ListOIDCClients(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tTYPE\tREDIRECT URIS\tCREATED\tREVOKED")
	for _, c := range cs {
		typ := "confidential"
		if c.Public {
			typ = "public"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, typ, strings.Join(c.RedirectURIs, " "), stamp(c.CreatedAt), stamp(c.RevokedAt))
	}
	return tw.Flush()
}

func signingKeysCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) != 1 || args[0] != "rotate" {
		return usageError{"usage: pairingd signing-keys rotate"}
	}
	return withStore(ctx, cfg, log, func(st *store.Store) error {
		kid, err := oidcapi.RotateSigningKey(ctx, st, time.Now().UTC())
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "new signing key %s; the old one stays in the JWKS until its tokens expire\n", kid)
		return nil
	})
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func signInCommand(ctx context.Context, cfg Config, log *slog.Logger, cmd string, args []string, out io.Writer) error {
	if cmd == "clients" {
		return clientsCommand(ctx, cfg, log, args, out)
	}
	return signingKeysCommand(ctx, cfg, log, args, out)
}
