package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/messenger"
	"github.com/pairingd/pairingd/bots/telegram"
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
	// obs counts the messages the channels send (the process's metrics).
	obs pairing.Observer
}

// ChannelConfig is one item of channels: its type, and the settings its
// adapter owns (name included), decoded into the adapter's config struct.
type ChannelConfig struct {
	Type string
	// Settings points at the adapter's config (*telegram.Config ...); nil
	// for an unknown type.
	Settings any
}

// UnmarshalYAML decodes the item into its type's config over the
// adapter's defaults.
func (c *ChannelConfig) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Type string `yaml:"type"`
	}
	if err := n.Decode(&head); err != nil {
		return err
	}
	c.Type, c.Settings = head.Type, nil
	t, ok := channelTypes[head.Type]
	if !ok {
		return nil // reported by Validate, with the item's index
	}
	c.Settings = t.config()
	return n.Decode(c.Settings)
}

// Name is the channel's configured name.
func (c ChannelConfig) Name() string {
	if c.Settings == nil {
		return ""
	}
	return reflect.ValueOf(c.Settings).Elem().FieldByName("Name").String()
}

// channelType is one adapter in the table: its config's defaults, what it
// takes from the rest of the configuration, its validation, and how its
// channels are built (returning them for the service's registry and adding
// webhook routes and /readyz checks to the API).
type channelType struct {
	config   func() any
	inherit  func(settings any, root Config)
	validate func(settings any) error
	build    func(env channelEnv, settings []any, deps *api.Deps) ([]pairing.Channel, error)
}

// adapter makes the table entry of an adapter whose config is C.
func adapter[C interface{ Validate() error }](defaults func() C, inherit func(*C, Config),
	build func(channelEnv, []C, *api.Deps) ([]pairing.Channel, error)) channelType {
	return channelType{
		config:   func() any { c := defaults(); return &c },
		inherit:  func(s any, root Config) { inherit(s.(*C), root) },
		validate: func(s any) error { return (*s.(*C)).Validate() },
		build: func(env channelEnv, settings []any, d *api.Deps) ([]pairing.Channel, error) {
			cs := make([]C, len(settings))
			for i, s := range settings {
				cs[i] = *s.(*C)
			}
			return build(env, cs, d)
		},
	}
}

// channelTypes: a new messenger is one adapter folder and one line here.
var channelTypes = map[string]channelType{
	"telegram":  adapter(telegram.DefaultConfig, inheritTelegram, telegramChannels),
	"messenger": adapter(messenger.DefaultPageConfig, inheritMessenger, messengerChannels),
}

func channelTypeNames() []string {
	names := make([]string, 0, len(channelTypes))
	for n := range channelTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// buildChannels makes the configured channels, registers them with the
// service, and returns the run loops of those that have one.
func buildChannels(env channelEnv, deps *api.Deps) ([]func(context.Context) error, error) {
	byType := map[string][]any{}
	var order []string
	for _, ch := range env.cfg.Channels {
		if _, ok := channelTypes[ch.Type]; !ok {
			return nil, fmt.Errorf("channels[%s]: unknown type %q", ch.Name(), ch.Type)
		}
		if _, ok := byType[ch.Type]; !ok {
			order = append(order, ch.Type)
		}
		byType[ch.Type] = append(byType[ch.Type], ch.Settings)
	}
	var runs []func(context.Context) error
	for _, typ := range order {
		chans, err := channelTypes[typ].build(env, byType[typ], deps)
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
	return channel.Deps[S]{Service: svc, Intake: env.inbox, Texts: env.texts, Log: env.log, Observer: env.obs}
}

// inheritMessenger gives a Page the text locale of the templates.
func inheritMessenger(p *messenger.PageConfig, root Config) {
	p.FallbackLocale = root.Templates.FallbackLocale
}

// messengerChannels serves every Page behind one hub and one webhook
// route; each Page is a channel of its own.
func messengerChannels(env channelEnv, pages []messenger.PageConfig, d *api.Deps) ([]pairing.Channel, error) {
	hub, err := messengerHub(env, pages)
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

// messengerHub builds the hub of the given Pages.
func messengerHub(env channelEnv, pages []messenger.PageConfig) (*messenger.Hub, error) {
	hub, err := messenger.New(messenger.Config{Pages: pages, Threads: env.st}, deps[messenger.Pairing](env, env.svc))
	if err != nil {
		return nil, fmt.Errorf("messenger: %w", err)
	}
	return hub, nil
}
