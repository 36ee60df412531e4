package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// messengerHub builds one hub for every channel of type messenger; nil
// when there is none.
func messengerHub(cfg Config, svc *pairing.Service, st *store.Store, texts *templates.Catalog, log *slog.Logger, inbox *pairing.InboundWorker) (*messenger.Hub, error) {
	var pages []messenger.PageConfig
	for _, ch := range cfg.Channels {
		if ch.Type != "messenger" {
			continue
		}
		pages = append(pages, messenger.PageConfig{
			Name: ch.Name, PageID: ch.PageID, PageAccessToken: ch.PageAccessToken, AppID: ch.AppID,
			AppSecret: ch.AppSecret, VerifyToken: ch.VerifyToken, GraphURL: ch.GraphURL, Role: ch.Role,
			TargetAppID: ch.TargetAppID, MessageTag: ch.MessageTag, LoginURL: ch.LoginURL,
			IDMatching: ch.IDMatching, FallbackLocale: cfg.Templates.FallbackLocale,
			Pace: cfg.Notify.messengerPace(),
		})
	}
	if len(pages) == 0 {
		return nil, nil
	}
	hub, err := messenger.New(messenger.Config{Pages: pages, Inbox: inbox}, svc, st, st, texts, log)
	if err != nil {
		return nil, fmt.Errorf("messenger: %w", err)
	}
	return hub, nil
}

// buildChannels makes the configured channels, registers them with the
// service (PIN resends, notifications), adds their webhook routes to the
// API, and returns what must run in the background.
func buildChannels(cfg Config, svc *pairing.Service, st *store.Store, texts *templates.Catalog, log *slog.Logger, deps *api.Deps, inbox *pairing.InboundWorker) ([]func(context.Context) error, error) {
	var runs []func(context.Context) error
	hub, err := messengerHub(cfg, svc, st, texts, log, inbox)
	if err != nil {
		return nil, err
	}
	if hub != nil {
		for _, ch := range hub.Channels() {
			svc.RegisterChannel(ch)
		}
		deps.Messenger = hub
		h := hub.WebhookHandler()
		deps.Webhooks = append(deps.Webhooks,
			api.Webhook{Method: http.MethodGet, Path: messenger.WebhookPath, Handler: h},
			api.Webhook{Method: http.MethodPost, Path: messenger.WebhookPath, Handler: h})
	}
	for _, ch := range cfg.Channels {
		switch ch.Type {
		case "messenger":
		case "telegram":
			run, err := telegramChannel(cfg, ch, svc, st, texts, log, deps, inbox)
			if err != nil {
				return nil, err
			}
			runs = append(runs, run)
		default:
			return nil, fmt.Errorf("channels[%s]: unknown type %q", ch.Name, ch.Type)
		}
	}
	return runs, nil
}
