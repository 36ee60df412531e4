package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/pairingd/pairingd/api"
	oidcapi "github.com/pairingd/pairingd/api/oidc"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// Sign in with your messenger: the OpenID Provider, when oidc.enabled.

// mountSignIn builds the provider and adds its routes to the API. It runs
// after the channels are registered, so the page can offer each of them.
func mountSignIn(ctx context.Context, env channelEnv, deps *api.Deps) error {
	cfg := env.cfg
	if !cfg.OIDC.Enabled {
		return nil
	}
	types := map[string]string{}
	var chans []oidcapi.Channel
	for _, ch := range cfg.Channels {
		types[ch.Name()] = ch.Type
		chans = append(chans, oidcapi.Channel{Name: ch.Name(), Type: ch.Type})
	}
	signIns := env.svc.EnableSignIn(env.st, cfg.OIDC.RequestTTL, types)
	pages, err := templates.LoadPages(cfg.Templates.Dir)
	if err != nil {
		return err
	}
	if err := oidcapi.EnsureSigningKey(ctx, env.st, time.Now().UTC(), cfg.OIDC.SigningAlgorithm); err != nil {
		return err
	}
	pinClients, loginCheckers := pinPageDeps(cfg)
	p, err := oidcapi.New(cfg.Server.PublicURL, cfg.OIDC, oidcapi.Deps{
		Store: env.st, SignIns: signIns, Channels: chans, Texts: env.texts, Pages: pages,
		Assets: templates.PageAsset(cfg.Templates.Dir), Secret: []byte(env.svc.Config().Secret), Log: env.log,
		PINPageClients: pinClients, LoginCheckers: loginCheckers, PINLength: env.svc.Config().PINLength,
	})
	if err != nil {
		return err
	}
	for _, r := range p.Routes() {
		deps.Webhooks = append(deps.Webhooks, api.Webhook{Method: r.Method, Path: r.Path, Handler: r.Handler, Unlimited: !r.Browser, Page: r.Browser})
	}
	deps.SubjectLinker = subjectLinker{signIns, pairing.SubjectLinkWindow}
	return nil
}

// subjectLinker is POST /v1/links/oidc.
type subjectLinker struct {
	si     *pairing.SignIns
	window time.Duration
}

func (l subjectLinker) LinkSubject(ctx context.Context, req pairing.SubjectLinkRequest) (pairing.Result, error) {
	return l.si.LinkSubject(ctx, req, l.window)
}

// signInPruneEvery is how often expired sign-in state is deleted. More
// often than the hourly prunes: at full speed sign-ins leave several
// rows each, and every one of them is dead within minutes.
const signInPruneEvery = 10 * time.Minute

// signInPruneLoop deletes expired authorization requests, chat tokens,
// access tokens and sessions, and signing keys retired longer ago than
// any token they signed can live.
func signInPruneLoop(st *store.Store, log *slog.Logger, cfg oidcapi.Config) func(context.Context) error {
	return every(signInPruneEvery, func(ctx context.Context) {
		now := time.Now()
		n, err := st.PruneSignIn(ctx, now, now.Add(-cfg.KeyRetention()))
		logPrune(ctx, log, slog.LevelDebug, "expired sign-in requests, tokens, sessions and retired signing keys", n, err)
	})
}
