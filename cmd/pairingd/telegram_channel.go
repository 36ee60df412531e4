package main

import (
	"context"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/pairing"
)

// inheritTelegram gives a bot the service's public URL (its webhook in
// webhook mode) and the text locale of the templates.
func inheritTelegram(c *telegram.Config, root Config) {
	c.PublicURL = root.Server.PublicURL
	c.FallbackLocale = root.Templates.FallbackLocale
	inheritOneTap(c, root)
}

// telegramChannels builds one bot per channel of type telegram, adds its
// webhook route in webhook mode and its state to /readyz.
func telegramChannels(env channelEnv, bots []telegram.Config, d *api.Deps) ([]pairing.Channel, error) {
	var out []pairing.Channel
	for _, ch := range bots {
		bot, err := telegram.New(ch, deps[telegram.Pairing](env, env.svc))
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
