package main

import (
	"context"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/pairing"
)

// telegramChannels builds one bot per channel of type telegram, adds its
// webhook route in webhook mode and its state to /readyz.
func telegramChannels(env channelEnv, chs []ChannelConfig, d *api.Deps) ([]pairing.Channel, error) {
	var out []pairing.Channel
	for _, ch := range chs {
		bot, err := telegram.New(telegram.Config{
			Name:           ch.Name,
			Token:          ch.Token,
			Mode:           ch.Mode,
			APIEndpoint:    ch.APIEndpoint,
			PublicURL:      env.cfg.Server.PublicURL,
			WebhookSecret:  ch.WebhookSecret,
			PollTimeout:    ch.PollTimeout,
			StatusDisplay:  ch.StatusDisplay,
			FallbackLocale: env.cfg.Templates.FallbackLocale,
			Pace:           env.cfg.Notify.telegramPace(),
		}, deps[telegram.Pairing](env, env.svc))
		if err != nil {
			return nil, err
		}
		if bot.Mode() == telegram.ModeWebhook {
			d.Webhooks = append(d.Webhooks, api.Webhook{
				Method: "POST", Path: telegram.WebhookPath(ch.Name), Handler: bot.WebhookHandler(),
			})
		}
		d.Checks = append(d.Checks, api.Check{
			Name:     "channel:" + ch.Name,
			Check:    func(context.Context) error { return bot.Health() },
			Optional: true,
		})
		out = append(out, bot)
	}
	return out, nil
}
