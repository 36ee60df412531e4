package messenger

import (
	"cmp"
	"context"
	"errors"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// handle runs one event. An error means "handle it again later": the
// delivery answers 500 and Meta retries. Refusals the person should read
// (rate limits, conflicts) and permanent send failures are not errors.
func (h *Hub) handle(ctx context.Context, p *page, ev event) error {
	kind := ev.kind()
	if ev.Standby {
		return h.onStandby(ctx, p, ev)
	}
	switch kind {
	case kindMessage, kindPostback, kindReferral, kindAccountLinking:
		c, err := h.enter(ctx, p, ev)
		if err != nil || c == nil {
			return err
		}
		switch kind {
		case kindMessage:
			return c.onMessage(ctx, ev.Item.Message)
		case kindPostback:
			return c.onPostback(ctx, ev.Item.Postback)
		case kindReferral:
			return c.onReferral(ctx, ev.Item.Referral)
		default:
			return c.onAccountLinking(ctx, ev.Item.AccountLinking)
		}
	case kindPassThread, kindTakeThread, kindRequestThread, kindAppRoles:
		return h.onHandover(ctx, p, ev)
	}
	h.log.Debug("event ignored", "channel", p.cfg.Name, "kind", kind)
	return nil
}

// chat is one conversation: a Page, a person, their language.
type chat struct {
	h       *Hub
	p       *page
	key     pairing.LeadKey
	profile pairing.Profile
	locale  string
}

// enter is what every event a person caused does first: note the 24-hour
// window, record the lead (TouchLead), and join it to the person's leads
// on the other Pages when ID matching is on. A nil chat means the sender
// is not a PSID (a plugin's user_ref) and the event is ignored.
func (h *Hub) enter(ctx context.Context, p *page, ev event) (*chat, error) {
	psid := ev.psid()
	if !validPSID(psid) {
		h.log.Debug("event without a page-scoped sender ignored", "channel", p.cfg.Name, "kind", ev.kind())
		return nil, nil
	}
	key := pairing.LeadKey{Channel: p.cfg.Name, ExternalID: psid}
	h.noteInbound(key)
	if h.role(ctx, p) == RoleSecondary {
		// A secondary receiver gets `messaging` (not standby) events only
		// for threads it owns.
		h.trackOwner(ctx, p, key, p.cfg.AppID)
	}
	prof := h.profile(ctx, p, key)
	first := p.cfg.IDMatching && h.firstSight(ctx, key)
	lead, err := h.svc.TouchLead(ctx, key, prof)
	if err != nil {
		return nil, err
	}
	if first {
		h.matchIDs(ctx, p, key)
	}
	return &chat{h: h, p: p, key: key, profile: prof, locale: cmp.Or(lead.Profile.Locale, prof.Locale, p.cfg.FallbackLocale)}, nil
}

// firstSight tells whether no lead exists yet for key; a lead seen once is
// remembered so the check costs one read per person and process.
func (h *Hub) firstSight(ctx context.Context, key pairing.LeadKey) bool {
	h.mu.Lock()
	known := h.known[key]
	h.mu.Unlock()
	if known {
		return false
	}
	st, err := h.svc.Status(ctx, key)
	if err != nil {
		h.log.Error("lead status", "channel", key.Channel, "err", err)
		return false
	}
	h.mu.Lock()
	if len(h.known) > 100000 {
		clear(h.known)
	}
	h.known[key] = true
	h.mu.Unlock()
	return st.Lead.ID == 0
}

// say sends a message in this chat. A permanent failure (blocked, window,
// thread owned by another app) is logged and not retried.
func (c *chat) say(ctx context.Context, msg outMessage) error {
	err := c.h.send(ctx, c.p, c.key, pairing.SendReply, msg)
	if err != nil && IsPermanent(err) {
		c.h.log.Warn("message not sent", "channel", c.p.cfg.Name, "err", err)
		return nil
	}
	return err
}

func (c *chat) sayText(ctx context.Context, key string, data any, replies ...quickReply) error {
	return c.say(ctx, textMessage(c.h.text(c.locale, key, data), replies...))
}

// sayLast sends the last message of a pairing exchange, then hands the
// thread on (finishExchange) once it is sent.
func (c *chat) sayLast(ctx context.Context, key string, replies ...quickReply) error {
	if err := c.sayText(ctx, key, nil, replies...); err != nil {
		return err
	}
	c.h.finishExchange(ctx, c.p, c.key)
	return nil
}

func (c *chat) onMessage(ctx context.Context, m *inMessage) error {
	if m.QuickReply != nil && m.QuickReply.Payload != "" {
		return c.act(ctx, m.QuickReply.Payload)
	}
	if action, ok := c.h.words[normalizeWord(m.Text)]; ok && m.Text != "" {
		return c.act(ctx, action)
	}
	return c.sayText(ctx, "messenger_hint", nil, c.h.menuReplies(c.locale)...)
}

func (c *chat) onPostback(ctx context.Context, pb *postback) error {
	if pb.Payload == payloadGetStarted {
		if pb.Referral != nil && pb.Referral.Ref != "" {
			return c.deepLink(ctx, pb.Referral.Ref)
		}
		return c.sayText(ctx, "messenger_welcome", nil, c.h.menuReplies(c.locale)...)
	}
	return c.act(ctx, pb.Payload)
}

func (c *chat) onReferral(ctx context.Context, r *referral) error {
	if r.Ref == "" {
		c.h.log.Debug("referral without ref ignored", "channel", c.p.cfg.Name, "source", channel.Truncate(r.Source, 32))
		return nil
	}
	return c.deepLink(ctx, r.Ref)
}

// act runs one payload: a postback, a quick reply or a chat word.
func (c *chat) act(ctx context.Context, payload string) error {
	if isDeepLinkPayload(payload) {
		return c.onDeepLinkAnswer(ctx, payload)
	}
	if pairing.IsLinkNoticeToken(payload) {
		return c.onNoticeUnlink(ctx, payload)
	}
	switch payload {
	case payloadLink:
		return c.startPairing(ctx)
	case payloadUnlink:
		return c.askUnlink(ctx)
	case payloadUnlinkConfirm:
		return c.unlink(ctx)
	case payloadUnlinkCancel:
		return c.sayLast(ctx, "messenger_unlink_cancelled")
	case payloadStatus:
		return c.status(ctx)
	case payloadHelp, payloadGetStarted:
		return c.sayText(ctx, "messenger_help", nil, c.h.menuReplies(c.locale)...)
	}
	c.h.log.Debug("unknown payload", "channel", c.p.cfg.Name, "payload_len", len(payload))
	return c.sayText(ctx, "messenger_hint", nil, c.h.menuReplies(c.locale)...)
}

// startPairing issues a PIN and sends the pairing message.
func (c *chat) startPairing(ctx context.Context) error {
	pin, err := c.h.svc.IssuePIN(ctx, c.key, c.profile, pairing.IssueOptions{})
	var re *pairing.RetryError
	if errors.As(err, &re) {
		secs := int(re.RetryAfter.Seconds())
		return c.sayText(ctx, "messenger_wait", map[string]any{"Seconds": max(secs, 1)})
	}
	if err != nil {
		return err
	}
	err = c.h.deliverPIN(ctx, c.p, c.key, c.locale, pin)
	if err != nil && IsPermanent(err) {
		c.h.log.Warn("pairing message not sent", "channel", c.p.cfg.Name, "err", err)
		return nil
	}
	return err
}

// askUnlink asks for a confirmation, or says there is nothing to unlink.
func (c *chat) askUnlink(ctx context.Context) error {
	st, err := c.h.svc.Status(ctx, c.key)
	if err != nil {
		return err
	}
	if !st.Linked {
		return c.sayText(ctx, "messenger_not_linked", nil, c.h.reply(c.locale, "messenger_menu_link", payloadLink))
	}
	return c.sayText(ctx, "messenger_unlink_confirm", nil,
		c.h.reply(c.locale, "messenger_unlink_yes", payloadUnlinkConfirm),
		c.h.reply(c.locale, "messenger_unlink_no", payloadUnlinkCancel))
}

func (c *chat) unlink(ctx context.Context) error {
	_, err := c.h.svc.UnlinkLead(ctx, c.key, pairing.ActorBot)
	switch {
	case errors.Is(err, pairing.ErrNotLinked):
		return c.sayText(ctx, "messenger_not_linked", nil)
	case err != nil:
		return err
	}
	return c.sayLast(ctx, "messenger_unlinked")
}

func (c *chat) status(ctx context.Context) error {
	st, err := c.h.svc.Status(ctx, c.key)
	if err != nil {
		return err
	}
	if st.Linked {
		return c.sayLast(ctx, "messenger_status_linked", c.h.reply(c.locale, "messenger_menu_logout", payloadUnlink))
	}
	return c.sayLast(ctx, "messenger_status_not_linked", c.h.reply(c.locale, "messenger_menu_link", payloadLink))
}

// onAccountLinking completes the Log In button flow: "linked" carries the
// authorization code AccountLinking made; "unlinked" is the person
// logging out from Messenger's menu.
func (c *chat) onAccountLinking(ctx context.Context, al *accountLinking) error {
	switch al.Status {
	case "linked":
		psid, userID, ok := c.h.verifyAuthCode(c.p, al.AuthorizationCode)
		if !ok || psid != c.key.ExternalID {
			c.h.log.Warn("account linking: authorization code refused", "channel", c.p.cfg.Name)
			return c.sayText(ctx, "messenger_link_failed", nil)
		}
		// The link was made when the site called AccountLinking; linking
		// again is a no-op then, and repairs a link removed meanwhile.
		if _, err := c.h.svc.LinkLead(ctx, c.key, userID); err != nil {
			return c.linkRefused(ctx, err)
		}
		return c.sayLast(ctx, "messenger_linked")
	case "unlinked":
		_, err := c.h.svc.UnlinkLead(ctx, c.key, pairing.ActorMessenger)
		if err != nil && !errors.Is(err, pairing.ErrNotLinked) {
			return err
		}
		return c.sayText(ctx, "messenger_unlinked", nil)
	}
	c.h.log.Debug("account linking status ignored", "channel", c.p.cfg.Name, "status", channel.Truncate(al.Status, 16))
	return nil
}

// linkRefused tells the person why a link was not made; other errors go
// back for a retry.
func (c *chat) linkRefused(ctx context.Context, err error) error {
	var ce *pairing.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Conflict.Kind == pairing.ConflictBotLinkedElsewhere:
		return c.sayText(ctx, "messenger_conflict_chat", nil, c.h.reply(c.locale, "messenger_menu_logout", payloadUnlink))
	case errors.Is(err, pairing.ErrConflict):
		return c.sayText(ctx, "messenger_conflict_account", nil)
	case errors.Is(err, pairing.ErrInvalid):
		return c.sayText(ctx, "messenger_link_failed", nil)
	}
	return err
}

// onStandby tracks a thread another app owns; it is never answered.
func (h *Hub) onStandby(ctx context.Context, p *page, ev event) error {
	psid := ev.psid()
	if !validPSID(psid) {
		return nil
	}
	key := pairing.LeadKey{Channel: p.cfg.Name, ExternalID: psid}
	if ev.kind() == kindMessage || ev.kind() == kindPostback {
		h.noteInbound(key)
	}
	// Standby means another app owns the thread; forget a belief that we do.
	if owner, err := h.threads.ThreadOwner(ctx, key); err == nil && owner != "" && owner == p.cfg.AppID {
		h.trackOwner(ctx, p, key, "")
	}
	h.log.Debug("standby event tracked", "channel", p.cfg.Name, "kind", ev.kind())
	return nil
}

// onNoticeUnlink is "This wasn't me: unlink" under a link notice (a
// postback whose payload is the notice's token, checked against this
// chat and the link it reported).
func (c *chat) onNoticeUnlink(ctx context.Context, token string) error {
	_, err := c.h.svc.UnlinkByNotice(ctx, c.key, token)
	switch {
	case err == nil:
		return c.sayText(ctx, "link_notice_unlinked", nil)
	case errors.Is(err, pairing.ErrNotLinked), errors.Is(err, pairing.ErrTokenExpired):
		return c.sayText(ctx, "link_notice_stale", nil)
	case errors.Is(err, pairing.ErrTokenUsed):
		return c.sayText(ctx, "link_notice_used", nil)
	case errors.Is(err, pairing.ErrTokenUnknown):
		c.h.log.Debug("unknown link notice token", "channel", c.p.cfg.Name)
		return nil
	}
	return err
}
