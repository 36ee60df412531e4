package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	oidcapi "github.com/pairingd/pairingd/api/oidc"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// OpenID Connect clients (the sites that sign people in) and the signing
// keys. The parsing is here; the work is in functions that take parsed
// values.

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

func clientsCommand(a *app) *cobra.Command {
	var nc newClient
	create := &cobra.Command{
		Use:   "create --name NAME --redirect-uri URI",
		Short: "register an OpenID Connect client (a site that signs people in); JSON on the last line",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checked, err := nc.checked()
			if err != nil {
				return err
			}
			return a.withService(cmd, func(st *store.Store, _ *pairing.Service) error {
				c, err := createClient(cmd.Context(), st, checked, time.Now().UTC())
				if err != nil {
					return err
				}
				b, _ := json.Marshal(c)
				if c.ClientSecret != "" {
					fmt.Fprintln(a.stdout, "created client; the secret is shown only this once:")
				}
				fmt.Fprintln(a.stdout, string(b))
				return nil
			})
		},
	}
	f := create.Flags()
	f.StringVar(&nc.Name, "name", "", "the site's name, shown in the chat (required)")
	f.StringArrayVar(&nc.RedirectURIs, "redirect-uri", nil, "an exact redirect URI (required, repeatable)")
	f.StringVar(&nc.InitiateLoginURI, "initiate-login-uri", "", "where the site starts a sign-in (https)")
	f.BoolVar(&nc.Public, "public", false, "a client without secret (single-page or mobile app)")

	list := &cobra.Command{
		Use:   "list",
		Short: "list OpenID Connect clients (never their secrets)",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd, func(st *store.Store, _ *pairing.Service) error {
				return listClients(cmd.Context(), st, a.stdout)
			})
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke CLIENT_ID",
		Short: "revoke a client and the access tokens issued to it",
		Args:  nArgs(1, "usage: pairingd clients revoke CLIENT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withService(cmd, func(st *store.Store, _ *pairing.Service) error {
				if err := st.RevokeOIDCClient(cmd.Context(), args[0], time.Now().UTC()); err != nil {
					if errors.Is(err, pairing.ErrNotFound) {
						return fmt.Errorf("no active client %q", args[0])
					}
					return err
				}
				fmt.Fprintf(a.stdout, "revoked client %s\n", args[0])
				return nil
			})
		},
	}
	return group("clients", "register, list and revoke the sites that sign people in (OpenID Connect)", create, list, revoke)
}

func signingKeysCommand(a *app) *cobra.Command {
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "make a new ID token signing key (of oidc.signing_algorithm); the old one stays in the JWKS until its tokens expire",
		Args:  noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := a.config()
			if err != nil {
				return err
			}
			return withService(cmd.Context(), cfg, log, func(st *store.Store, _ *pairing.Service) error {
				kid, err := oidcapi.RotateSigningKey(cmd.Context(), st, time.Now().UTC(), cfg.OIDC.SigningAlgorithm)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "new signing key %s; the old one stays in the JWKS until its tokens expire\n", kid)
				return nil
			})
		},
	}
	return group("signing-keys", "rotate the OpenID Connect ID token signing key", rotate)
}

// checked validates a client before anything is opened; the name comes
// back normalized.
func (nc newClient) checked() (newClient, error) {
	name, err := pairing.NormalizeDisplayName(nc.Name)
	if err != nil || name == "" {
		return nc, usageError{"--name must be 1..64 characters without control characters"}
	}
	nc.Name = name
	if len(nc.RedirectURIs) == 0 {
		return nc, usageError{"at least one --redirect-uri is needed"}
	}
	for _, u := range nc.RedirectURIs {
		if err := checkRedirectURI(u, nc.Public); err != nil {
			return nc, usageError{fmt.Sprintf("--redirect-uri %q: %v", u, err)}
		}
	}
	if nc.InitiateLoginURI != "" {
		if u, err := url.Parse(nc.InitiateLoginURI); err != nil || u.Scheme != "https" && !loopback(u) {
			return nc, usageError{"--initiate-login-uri must be an https URL"}
		}
	}
	return nc, nil
}

// createClient stores a checked client; only the SHA-256 of the secret
// is kept.
func createClient(ctx context.Context, st *store.Store, nc newClient, now time.Time) (createdClient, error) {
	id, err := randomString(16)
	if err != nil {
		return createdClient{}, err
	}
	rec := store.OIDCClient{ID: id, Name: nc.Name, RedirectURIs: nc.RedirectURIs, InitiateLoginURI: nc.InitiateLoginURI, Public: nc.Public, CreatedAt: now}
	out := createdClient{ClientID: id, Name: nc.Name, RedirectURIs: nc.RedirectURIs, Public: nc.Public}
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

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
