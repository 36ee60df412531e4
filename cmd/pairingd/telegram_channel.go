package main

import (
	"context"
	"log/slog"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/templates"
)

// telegramChannel builds the bot of one channel of type telegram, registers
// it with the service (PIN resends), adds its webhook route in webhook mode
// and its state to /readyz, and returns its run loop.
func telegramChannel(cfg Config, ch ChannelConfig, svc *pairing.Service, st *store.Store, texts *templates.Catalog, log *slog.Logger, deps *api.Deps, inbox *pairing.InboundWorker) (func(context.Context) error, error) {
	bot, err := telegram.New(telegram.Config{
		Name:           ch.Name,
		Token:          ch.Token,
		Mode:           ch.Mode,
		APIEndpoint:    ch.APIEndpoint,
		PublicURL:      cfg.Server.PublicURL,
		WebhookSecret:  ch.WebhookSecret,
		PollTimeout:    ch.PollTimeout,
		StatusDisplay:  ch.StatusDisplay,
		FallbackLocale: cfg.Templates.FallbackLocale,
		Pace:           cfg.Notify.telegramPace(),
		DeepLinks:      svc,
		Inbox:          inbox,
	}, svc, st, texts, log)
	if err != nil {
		return nil, err
	}
	svc.RegisterChannel(bot)
	if bot.Mode() == telegram.ModeWebhook {
		deps.Webhooks = append(deps.Webhooks, api.Webhook{
			Method: "POST", Path: telegram.WebhookPath(ch.Name), Handler: bot.WebhookHandler(),
		})
	}
	deps.Checks = append(deps.Checks, api.Check{
		Name:     "channel:" + ch.Name,
		Check:    func(context.Context) error { return bot.Health() },
		Optional: true,
	})
	return bot.Run, nil
}
