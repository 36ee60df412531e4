package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/cmd/pairingd-example-site/site"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// pairingd demo: the whole thing on one machine with no bot token. One
// process runs pairingd (SQLite in a temporary directory, OpenID Connect
// on, one Telegram channel), a stand-in for the Telegram Bot API with a
// web chat in place of the Telegram app, and the example site
// (cmd/pairingd-example-site) as the relying party. docs/demo.md says
// what each part shows.

// demoBot is the stand-in bot's name and username.
const (
	demoBotName     = "Example Shop Bot"
	demoBotUsername = "example_shop_bot"
	demoSiteName    = "Example Shop"
)

func demoCommand(a *app) *cobra.Command {
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "run pairingd, a stand-in Telegram with a web chat and a sample site, and print the site's URL",
		Long: `Runs everything needed to see a sign-in with Telegram in a browser, with
no bot token and nothing to configure: pairingd on a temporary SQLite file,
a stand-in for the Telegram Bot API with a web chat (where you type /login
and press the bot's buttons), and a sample website that signs people in
with pairingd over OpenID Connect. All on free ports of 127.0.0.1; open the
URL it prints. Ctrl-C stops it and deletes the temporary files.

It ignores --config and PAIRINGD_* variables: the demo is always the same.`,
		Args: noCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{"--log-level must be debug, info, warn or error"}
			}
			return runDemo(cmd.Context(), a.stdout, a.stderr, logLevel)
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "pairingd's log level on stderr: debug, info, warn or error")
	return cmd
}

// runDemo runs the demo until ctx ends.
func runDemo(ctx context.Context, stdout, stderr io.Writer, logLevel string) (err error) {
	dir, err := os.MkdirTemp("", "pairingd-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The stand-in Telegram, and the web chat that plays the app.
	tgLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	token, err := demoToken()
	if err != nil {
		return err
	}
	tg := tgfake.Start(tgLn, token)
	defer tg.Close()
	bot := tg.Bot()
	bot.FirstName, bot.UserName = demoBotName, demoBotUsername
	tg.SetBot(bot)
	tg.AllowLocalURLs()            // every link of the demo is on 127.0.0.1
	tg.SetLoginDomain("127.0.0.1") // BotFather's /setdomain, for the one-tap button
	if err := tg.EnableWebChat(tgfake.WebChatConfig{Title: "Telegram stand-in"}); err != nil {
		return err
	}

	siteLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer siteLn.Close()
	siteURL := "http://" + siteLn.Addr().String()

	port, err := demoFreePort()
	if err != nil {
		return err
	}
	cfg, log, err := demoConfig(dir, port, tg, "", logLevel, stderr)
	if err != nil {
		return err
	}

	// Register the site with pairingd, as its operator would with
	// `pairingd clients create` and `pairingd keys create`.
	var client createdClient
	var apiKey string
	err = withService(ctx, cfg, log, func(st *store.Store, svc *pairing.Service) error {
		nc, err := newClient{Name: demoSiteName, RedirectURIs: site.RedirectURIs(siteURL), InitiateLoginURI: site.InitiateLoginURI(siteURL)}.checked()
		if err != nil {
			return err
		}
		if client, err = createClient(ctx, st, nc, time.Now().UTC()); err != nil {
			return err
		}
		_, apiKey, err = svc.CreateAPIKey(ctx, "example-site")
		return err
	})
	if err != nil {
		return fmt.Errorf("demo: register the site: %w", err)
	}
	// Now that the site has a client id, the bot's /login can lead to the
	// hosted PIN page and the one-tap sign-in of that site.
	if cfg, log, err = demoConfig(dir, port, tg, client.ClientID, logLevel, stderr); err != nil {
		return err
	}

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveErr <- serve(ctx, cfg, log)
	}()
	defer wg.Wait()
	defer cancel()
	if err := waitDemoReady(ctx, cfg.Server.PublicURL, tg, serveErr); err != nil {
		return err
	}

	s, err := site.New(ctx, site.Config{
		Issuer: cfg.Server.PublicURL, ClientID: client.ClientID, ClientSecret: client.ClientSecret,
		APIKey: apiKey, BaseURL: siteURL, Channel: "telegram", Name: demoSiteName,
		BotURL: tg.URL() + "/" + demoBotUsername,
		Log:    log,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	siteSrv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = siteSrv.Serve(siteLn) }()
	defer siteSrv.Close()

	fmt.Fprintf(stdout, "pairingd demo is running. Open this in your browser:\n\n    %s/\n\nPress Ctrl-C to stop; the temporary files go with it.\n", siteURL)

	select {
	case <-ctx.Done():
		<-serveErr
		return nil
	case err := <-serveErr:
		return err
	}
}

// demoConfig is the configuration of the demo's pairingd, made the way a
// configuration is always made (defaults, then PAIRINGD_ variables,
// validated), from a fixed set of variables.
// With siteClient set, the bot's /login leads to pairingd's hosted PIN
// page and offers Telegram's one-tap sign-in, both for that client.
func demoConfig(dir string, port int, tg *tgfake.Server, siteClient, logLevel string, stderr io.Writer) (Config, *slog.Logger, error) {
	public := "http://127.0.0.1:" + strconv.Itoa(port)
	vars := map[string]string{
		"PAIRINGD_SERVER_LISTEN":             "127.0.0.1:" + strconv.Itoa(port),
		"PAIRINGD_SERVER_PUBLIC_URL":         public,
		"PAIRINGD_DATABASE_DSN":              dir + string(os.PathSeparator) + "pairingd.db",
		"PAIRINGD_OIDC_ENABLED":              "true",
		"PAIRINGD_PAIRING_SITE_NAME":         demoSiteName,
		"PAIRINGD_LOG_LEVEL":                 logLevel,
		"PAIRINGD_CHANNELS_0_NAME":           "telegram",
		"PAIRINGD_CHANNELS_0_TYPE":           "telegram",
		"PAIRINGD_CHANNELS_0_TOKEN":          tg.Token(),
		"PAIRINGD_CHANNELS_0_API_ENDPOINT":   tg.Endpoint(),
		"PAIRINGD_CHANNELS_0_POLL_TIMEOUT":   "10s",
		"PAIRINGD_CHANNELS_0_DEEP_LINK_BASE": tg.URL() + "/",
	}
	if siteClient != "" {
		vars["PAIRINGD_CHANNELS_0_PIN_PAGE_CLIENT"] = siteClient
		vars["PAIRINGD_CHANNELS_0_ONE_TAP"] = "true"
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	cfg, err := loadConfigFrom("", func(k string) string { return vars[k] }, names)
	if err != nil {
		return Config{}, nil, fmt.Errorf("demo: %w", err)
	}
	return cfg, newLogger(cfg.Log, stderr), nil
}

// waitDemoReady waits until pairingd answers /readyz and the bot has
// started (it knows its username, which the sign-in page's links need).
func waitDemoReady(ctx context.Context, public string, tg *tgfake.Server, serveErr <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if tg.CallCount("setMyCommands") > 0 {
			if resp, err := client.Get(public + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		select {
		case err := <-serveErr:
			if err == nil {
				err = errors.New("pairingd stopped")
			}
			return fmt.Errorf("demo: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("demo: pairingd did not get ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// demoToken is a random token of the stand-in bot (the format BotFather
// uses; it is worth nothing outside this process).
func demoToken() (string, error) {
	s, err := randomString(24)
	return "100000001:" + s, err
}

// demoFreePort asks the system for a free port on 127.0.0.1. pairingd then
// listens on it; its public URL (the issuer) must be known before it
// starts.
func demoFreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
