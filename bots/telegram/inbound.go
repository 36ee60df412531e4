package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pairingd/pairingd/pairing"
)

// inboundEvent is the queue row of an update (a webhook delivery or one
// polled update): keyed by update_id
// (the dedupe), grouped by chat (one chat's updates in order), the body
// as Telegram sent it.
func (b *Bot) inboundEvent(u update, body []byte) pairing.InboundEvent {
	group := "update:" + strconv.FormatInt(u.id(), 10) // an update of no chat is a group of its own
	if c := u.chatID(); c != 0 {
		group = "chat:" + strconv.FormatInt(c, 10)
	}
	return pairing.InboundEvent{Source: b.source, Key: u.dedupeKey(), Group: group, Payload: body}
}

// handle runs one update. An error means "handle it again later";
// answers the person should read (rate limits, refusals) and permanent
// send failures are not errors.
func (b *Bot) handle(ctx context.Context, u update) error {
	switch {
	case u.Message != nil:
		return b.onMessage(ctx, u.Message)
	case u.CallbackQuery != nil:
		return b.onCallback(ctx, u.CallbackQuery)
	case u.MyChatMember != nil:
		return b.onMemberChange(ctx, u.MyChatMember)
	}
	b.log.Debug("update ignored", "channel", b.cfg.Name, "update_id", u.id(), "kind", u.kind)
	return nil
}

// handleInbound handles one stored update: the inbound worker calls it,
// one chat's updates in order, and tries again later on error (with
// backoff, until the intake's max age). A panic is a failure there too.
func (b *Bot) handleInbound(ctx context.Context, payload []byte) error {
	u, err := parseUpdate(payload)
	if err != nil {
		return fmt.Errorf("telegram: stored update: %w", pairing.ErrInboundDropped)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.HandleTimeout)
	defer cancel()
	err = b.handle(ctx, u)
	if errors.Is(err, pairing.ErrInvalid) {
		// Input the service refuses will be refused again: not a retry.
		b.log.Warn("update refused by the pairing service", "channel", b.cfg.Name, "update_id", u.id(), "kind", u.kind, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("telegram update %d (%s) on channel %s: %w", u.id(), u.kind, b.cfg.Name, err)
	}
	return nil
}
