package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	oidcapi "github.com/pairingd/pairingd/api/oidc"
	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/bots/telegram"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// Bot-first sign-in (the hosted PIN page, Telegram's one tap) and link
// notices: the per-channel keys pin_page_client, link_notices and
// (Telegram) one_tap, turned into the service's channel options and the
// provider's routes.

// sharedOptions reads the keys every channel type has.
func sharedOptions(ch ChannelConfig) channel.Options {
	if o, ok := ch.Settings.(interface{ Shared() channel.Options }); ok {
		return o.Shared()
	}
	return channel.DefaultOptions()
}

// applyChannelOptions gives the service each channel's options: its chat
// link (the hosted PIN page when the channel names a pin_page_client) and
// whether it sends link notices.
func applyChannelOptions(cfg Config, svc *pairing.Service) {
	for _, ch := range cfg.Channels {
		o := sharedOptions(ch)
		opts := pairing.ChannelOptions{NoLinkNotices: !o.LinkNotices}
		if o.PINPageClient != "" && cfg.OIDC.Enabled {
			opts.LinkURL = strings.TrimSuffix(cfg.Server.PublicURL, "/") + "/pair?buid={buid}"
		}
		svc.SetChannelOptions(ch.Name(), opts)
	}
}

// validateBotFirst checks the per-channel keys against the rest: the
// hosted page is part of the OpenID Provider and signs people in with its
// session.
func validateBotFirst(c Config) []error {
	var errs []error
	for i, ch := range c.Channels {
		o := sharedOptions(ch)
		if o.PINPageClient == "" {
			continue
		}
		key := fmt.Sprintf("config: channels[%d].pin_page_client", i)
		switch {
		case !c.OIDC.Enabled:
			errs = append(errs, errors.New(key+": needs oidc.enabled (the hosted PIN page signs people in to the provider)"))
		case c.OIDC.SessionTTL <= 0:
			errs = append(errs, errors.New(key+": needs oidc.session_ttl above 0 (the page signs the person in with a session)"))
		}
	}
	return errs
}

// inheritOneTap sets where a bot's login_url button leads, or why it has
// none.
func inheritOneTap(c *telegram.Config, root Config) {
	c.OneTapURL, c.OneTapOff = "", ""
	switch {
	case !c.OneTap:
		if c.PINPageClient != "" {
			c.OneTapOff = "one_tap is false (set it once the bot's domain is set with BotFather's /setdomain)"
		}
	case root.Server.PublicURL == "":
		c.OneTapOff = "server.public_url is not set"
	case !root.OIDC.Enabled:
		c.OneTapOff = "oidc.enabled is false"
	case c.PINPageClient == "":
		c.OneTapOff = "pin_page_client is not set (the site to sign in to)"
	default:
		c.OneTapURL = strings.TrimSuffix(root.Server.PublicURL, "/") + "/pair/telegram/" + url.PathEscape(c.Name)
	}
}

// pinPageDeps are the provider's parts of the hosted page: each channel's
// site, and the login checks of the bots with the one-tap button.
func pinPageDeps(cfg Config) (map[string]string, map[string]oidcapi.LoginChecker) {
	clients := map[string]string{}
	checkers := map[string]oidcapi.LoginChecker{}
	for _, ch := range cfg.Channels {
		o := sharedOptions(ch)
		if o.PINPageClient == "" {
			continue
		}
		clients[ch.Name()] = o.PINPageClient
		if tc, ok := ch.Settings.(*telegram.Config); ok && tc.OneTapURL != "" {
			checkers[ch.Name()] = telegramLogin{telegram.NewLoginChecker(tc.Token, nil, telegram.LoginMaxAge)}
		}
	}
	return clients, checkers
}

// telegramLogin gives the provider the refusals it tells apart.
type telegramLogin struct{ c *telegram.LoginChecker }

func (t telegramLogin) CheckLogin(q url.Values) (string, error) {
	id, err := t.c.CheckLogin(q)
	switch {
	case errors.Is(err, telegram.ErrLoginStale):
		return "", fmt.Errorf("%w: %w", oidcapi.ErrLoginStale, err)
	case err != nil:
		return "", fmt.Errorf("%w: %w", oidcapi.ErrLoginInvalid, err)
	}
	return id, nil
}

// noticeTexts renders link notices from the chat texts.
type noticeTexts struct{ c *templates.Catalog }

func (n noticeTexts) LinkNotice(locale, site string) (string, string) {
	return n.c.Text(locale, "link_notice", map[string]any{"Site": site}), n.c.Text(locale, "link_notice_button", nil)
}
