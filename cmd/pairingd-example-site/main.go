// Command pairingd-example-site is a small website that signs people in
// with pairingd ("Sign in with Telegram") and uses its REST API: a
// starting point to copy. `pairingd demo` runs it for you; to run it
// against your own pairingd:
//
//	pairingd clients create --name "Example Shop" \
//	  --redirect-uri http://127.0.0.1:3000/callback --redirect-uri http://127.0.0.1:3000/signed-out \
//	  --initiate-login-uri http://127.0.0.1:3000/login
//	pairingd keys create --name example-site
//	SITE_ISSUER=http://127.0.0.1:8080 SITE_CLIENT_ID=... SITE_CLIENT_SECRET=... SITE_API_KEY=... \
//	  go run ./cmd/pairingd-example-site
//
// Settings come from the environment: SITE_ISSUER (pairingd's
// server.public_url), SITE_CLIENT_ID, SITE_CLIENT_SECRET, SITE_API_KEY,
// SITE_LISTEN (default 127.0.0.1:3000), SITE_BASE_URL (default
// http://SITE_LISTEN), SITE_CHANNEL (default telegram), SITE_BOT_URL (the
// bot's https://t.me/ link, shown on the home page).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pairingd/pairingd/cmd/pairingd-example-site/site"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	listen := env("SITE_LISTEN", "127.0.0.1:3000")
	s, err := site.New(ctx, site.Config{
		Issuer:       os.Getenv("SITE_ISSUER"),
		ClientID:     os.Getenv("SITE_CLIENT_ID"),
		ClientSecret: os.Getenv("SITE_CLIENT_SECRET"),
		APIKey:       os.Getenv("SITE_API_KEY"),
		BaseURL:      env("SITE_BASE_URL", "http://"+listen),
		Channel:      os.Getenv("SITE_CHANNEL"),
		BotURL:       os.Getenv("SITE_BOT_URL"),
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	slog.Info("example site listening", "url", "http://"+listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
