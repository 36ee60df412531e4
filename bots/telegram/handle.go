package telegram

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// outcome of one update in a batch.
type outcome int

const (
	handled outcome = iota // done, or a duplicate
	failed                 // handling failed; the update must come again
	skipped                // not tried: an earlier update of its chat failed
)

// handlingContext is the context updates are handled under: it survives
// the end of parent (Run stopping, Telegram hanging up on a webhook
// request) by grace, so an update in hand is finished rather than cut in
// the middle, and it ends after the handle timeout in any case.
func (b *Bot) handlingContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), b.cfg.HandleTimeout)
	grace := b.grace
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}

// dispatch handles a batch of updates: those of one chat in order,
// different chats side by side, a few at a time, each under its own
// handling context. After a failure the chat's later updates are skipped,
// so they are not handled out of order; once ctx ends no update is
// started.
func (b *Bot) dispatch(ctx context.Context, ups []update) map[int64]outcome {
	type groupKey struct{ chat, solo int64 }
	var order []groupKey
	groups := map[groupKey][]update{}
	for _, u := range ups {
		c := groupKey{chat: u.chatID()}
		if c.chat == 0 {
			c.solo = u.id() // an update of no chat is a group of its own
		}
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], u)
	}
	out := make(map[int64]outcome, len(ups))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, b.parallel)
	)
	for _, c := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(group []update) {
			defer wg.Done()
			defer func() { <-sem }()
			res := handled
			for _, u := range group {
				r := res
				switch {
				case r != handled || ctx.Err() != nil:
					r = skipped // not started: it comes again
				default:
					hctx, cancel := b.handlingContext(ctx)
					if err := b.handleOnce(hctx, u); err != nil {
						r = failed
					}
					cancel()
				}
				if r != handled {
					res = r
				}
				mu.Lock()
				out[u.id()] = r
				mu.Unlock()
			}
		}(groups[c])
	}
	wg.Wait()
	return out
}

// handleOnce claims the update in the dedupe table, handles it, and
// releases the claim when handling failed, so the update is handled again
// when Telegram sends it again. A panic in a handler is a failure, not a
// crash.
func (b *Bot) handleOnce(ctx context.Context, u update) (err error) {
	key := u.dedupeKey()
	first, err := b.dedupe.FirstSeen(ctx, b.source, key)
	if err != nil {
		b.log.Error("update dedupe", "channel", b.cfg.Name, "update_id", u.id(), "err", err)
		return err
	}
	if !first {
		b.log.Debug("duplicate update skipped", "channel", b.cfg.Name, "update_id", u.id(), "kind", u.kind)
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("telegram: update handler panicked: %v", r)
		}
		if err == nil {
			return
		}
		b.log.Error("update failed; it will be handled again", "channel", b.cfg.Name, "update_id", u.id(), "kind", u.kind, "err", err)
		// The claim must go even when ctx has ended.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if ferr := b.dedupe.Forget(fctx, b.source, key); ferr != nil {
			b.log.Error("update dedupe release", "channel", b.cfg.Name, "update_id", u.id(), "err", ferr)
		}
	}()
	err = b.handle(ctx, u)
	if errors.Is(err, pairing.ErrInvalid) {
		// Input the service refuses will be refused again: not a retry.
		b.log.Warn("update refused by the pairing service", "channel", b.cfg.Name, "update_id", u.id(), "kind", u.kind, "err", err)
		return nil
	}
	return err
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
