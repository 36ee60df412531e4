package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// channelEnv is what every channel type is built from.
type channelEnv struct {
	cfg   Config
	svc   *pairing.Service
	st    *store.Store
	texts *templates.Catalog
	log   *slog.Logger
	inbox *pairing.InboundWorker
}

// channelTypes builds the configured channels of each type from every
// channels[] entry of that type: it returns the channels for the
// service's registry and adds its webhook routes and /readyz checks to
// the API. A new messenger is one adapter folder and one line here.
var channelTypes = map[string]func(env channelEnv, chs []ChannelConfig, deps *api.Deps) ([]pairing.Channel, error){
	"telegram":  telegramChannels,
	"messenger": messengerChannels,
}

// buildChannels makes the configured channels, registers them with the
// service, and returns the run loops of those that have one.
func buildChannels(env channelEnv, deps *api.Deps) ([]func(context.Context) error, error) {
	byType := map[string][]ChannelConfig{}
	var order []string
	for _, ch := range env.cfg.Channels {
		if _, ok := channelTypes[ch.Type]; !ok {
			return nil, fmt.Errorf("channels[%s]: unknown type %q", ch.Name, ch.Type)
		}
		if _, ok := byType[ch.Type]; !ok {
			order = append(order, ch.Type)
		}
		byType[ch.Type] = append(byType[ch.Type], ch)
	}
	var runs []func(context.Context) error
	for _, typ := range order {
		chans, err := channelTypes[typ](env, byType[typ], deps)
		if err != nil {
			return nil, err
		}
		for _, ch := range chans {
			env.svc.RegisterChannel(ch)
			if r, ok := ch.(interface{ Run(context.Context) error }); ok {
				runs = append(runs, r.Run)
			}
		}
	}
	return runs, nil
}

// deps is what every adapter is built from; S is the adapter's interface
// of the service.
func deps[S any](env channelEnv, svc S) channel.Deps[S] {
	return channel.Deps[S]{Service: svc, Intake: env.inbox, Texts: env.texts, Log: env.log}
}

// messengerChannels serves every Page behind one hub and one webhook
// route; each Page is a channel of its own.
func messengerChannels(env channelEnv, chs []ChannelConfig, d *api.Deps) ([]pairing.Channel, error) {
	hub, err := messengerHub(env, chs)
	if err != nil {
		return nil, err
	}
	d.Messenger = hub
	h := hub.WebhookHandler()
	d.Webhooks = append(d.Webhooks,
		api.Webhook{Method: http.MethodGet, Path: messenger.WebhookPath, Handler: h},
		api.Webhook{Method: http.MethodPost, Path: messenger.WebhookPath, Handler: h})
	return hub.Channels(), nil
}

// messengerHub builds the hub of the given messenger channels.
func messengerHub(env channelEnv, chs []ChannelConfig) (*messenger.Hub, error) {
	var pages []messenger.PageConfig
	for _, ch := range chs {
		pages = append(pages, messenger.PageConfig{
			Name: ch.Name, PageID: ch.PageID, PageAccessToken: ch.PageAccessToken, AppID: ch.AppID,
			AppSecret: ch.AppSecret, VerifyToken: ch.VerifyToken, GraphURL: ch.GraphURL, Role: ch.Role,
			TargetAppID: ch.TargetAppID, MessageTag: ch.MessageTag, LoginURL: ch.LoginURL,
			IDMatching: ch.IDMatching, FallbackLocale: env.cfg.Templates.FallbackLocale,
			Pace: env.cfg.Notify.messengerPace(),
		})
	}
	hub, err := messenger.New(messenger.Config{Pages: pages, Threads: env.st}, deps[messenger.Pairing](env, env.svc))
	if err != nil {
		return nil, fmt.Errorf("messenger: %w", err)
	}
	return hub, nil
}
