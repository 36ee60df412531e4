package messenger

import (
	"context"
	"errors"
	"strings"

	"github.com/pairingd/pairingd/pairing"
)

// Site-initiated pairing: https://m.me/<page id>?ref=<token>. The ref
// arrives with the Get Started postback (a new thread) or as a
// messaging_referrals event (an existing thread). The Page asks which
// account to link with Confirm / Cancel quick replies; only Confirm spends
// the token and links. Tokens are never logged.

// Quick reply payloads of the deep-link confirmation; the token rides in
// the Confirm payload.
const (
	payloadDeepLinkConfirm = "DEEPLINK_CONFIRM:"
	payloadDeepLinkCancel  = "DEEPLINK_CANCEL"
)

// maxRefLen bounds the ref looked at: a deep-link token is 47 characters.
const maxRefLen = 64

// DeepLinkURL is the m.me link that opens the Page with token as the ref.
func (c *pageChannel) DeepLinkURL(token string) (string, error) {
	return "https://m.me/" + c.p.cfg.PageID + "?ref=" + token, nil
}

func isDeepLinkPayload(p string) bool {
	return p == payloadDeepLinkCancel || strings.HasPrefix(p, payloadDeepLinkConfirm) || strings.HasPrefix(p, payloadDeepLinkCancel+":")
}

// deepLink answers an m.me ref: the confirmation question, or why the
// link cannot be used.
func (c *chat) deepLink(ctx context.Context, ref string) error {
	if len(ref) > maxRefLen {
		return c.sayText(ctx, "messenger_deeplink_unknown", nil, c.h.menuReplies(c.locale)...)
	}
	pv, err := c.h.svc.PreviewDeepLink(ctx, c.key, ref)
	if err != nil {
		return c.deepLinkRefused(ctx, err)
	}
	key, data := "messenger_deeplink_confirm_neutral", any(nil)
	yes, no := "messenger_deeplink_yes", "messenger_deeplink_no"
	if pv.SignIn != nil {
		key, data = "messenger_signin_confirm", map[string]any{"Site": pv.SignIn.SiteName, "Code": pv.SignIn.MatchCode}
		yes, no = "messenger_signin_yes", "messenger_signin_no"
	} else if pv.DisplayName != "" {
		key, data = "messenger_deeplink_confirm", map[string]any{"Name": pv.DisplayName}
	}
	c.h.acquireThread(ctx, c.p, c.key)
	return c.sayText(ctx, key, data,
		c.h.reply(c.locale, yes, payloadDeepLinkConfirm+ref),
		c.h.reply(c.locale, no, payloadDeepLinkCancel+":"+ref))
}

// onDeepLinkAnswer handles the Confirm or Cancel quick reply.
func (c *chat) onDeepLinkAnswer(ctx context.Context, payload string) error {
	token, confirm := strings.CutPrefix(payload, payloadDeepLinkConfirm)
	if !confirm {
		key := "messenger_deeplink_cancelled"
		if token, ok := strings.CutPrefix(payload, payloadDeepLinkCancel+":"); ok && len(token) <= maxRefLen {
			if err := c.h.svc.DeclineDeepLink(ctx, c.key, token); err != nil {
				return c.deepLinkRefused(ctx, err)
			}
			if strings.HasPrefix(token, "psi_") {
				key = "messenger_signin_cancelled"
			}
		}
		return c.sayLast(ctx, key)
	}
	if len(token) > maxRefLen {
		return c.sayText(ctx, "messenger_deeplink_unknown", nil)
	}
	var site string
	if pv, err := c.h.svc.PreviewDeepLink(ctx, c.key, token); err == nil && pv.SignIn != nil {
		site = pv.SignIn.SiteName
	}
	res, err := c.h.svc.RedeemDeepLink(ctx, c.key, token)
	if err != nil {
		return c.deepLinkRefused(ctx, err)
	}
	key, data := "messenger_linked", any(nil)
	switch res.Outcome {
	case pairing.OutcomeSignedIn:
		key, data = "messenger_signin_done", map[string]any{"Site": site}
		c.h.log.Info("sign-in confirmed in the chat", "channel", c.p.cfg.Name)
	case pairing.OutcomeAlreadyLinked:
		key = "messenger_deeplink_already_linked"
	default:
		c.h.log.Info("chat linked by a deep link", "channel", c.p.cfg.Name)
	}
	// The answer is recorded: a failed reply is logged, not retried.
	if err := c.sayText(ctx, key, data); err != nil {
		c.h.log.Warn("deep link answer not sent", "channel", c.p.cfg.Name, "err", err)
	}
	c.h.finishExchange(ctx, c.p, c.key)
	return nil
}

// deepLinkRefused tells the person why a deep link was not used; other
// errors go back for a retry.
func (c *chat) deepLinkRefused(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, pairing.ErrTokenExpired):
		return c.sayText(ctx, "messenger_deeplink_expired", nil)
	case errors.Is(err, pairing.ErrTokenUsed):
		return c.sayText(ctx, "messenger_deeplink_used", nil)
	case errors.Is(err, pairing.ErrTokenUnknown), errors.Is(err, pairing.ErrNotFound):
		return c.sayText(ctx, "messenger_deeplink_unknown", nil, c.h.menuReplies(c.locale)...)
	}
	return c.linkRefused(ctx, err)
}
