package telegram

import "context"

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
