package messenger

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// storedEvent is an event's payload in the inbound queue: the messaging
// item as Meta sent it, and where it came from.
type storedEvent struct {
	PageID  string          `json:"page_id"`
	Standby bool            `json:"standby,omitempty"`
	Item    json.RawMessage `json:"item"`
}

// inboundEvents turns a delivery's events into queue rows, dropping (with
// a log line) those of an unknown Page and those of a Page of another app
// than the one that signed. The dedupe key is event.dedupeKey; the group
// is the person (Page + PSID), whose events are handled in order.
func (h *Hub) inboundEvents(secret string, events []event) []pairing.InboundEvent {
	out := make([]pairing.InboundEvent, 0, len(events))
	for _, ev := range events {
		p, ok := h.byID[ev.PageID]
		if !ok {
			h.log.Warn("webhook entry for an unknown page ignored", "page_id", channel.Truncate(ev.PageID, 32))
			continue
		}
		// A delivery signed by one app may not speak for another app's Page.
		if p.cfg.AppSecret != secret {
			h.log.Warn("webhook entry signed by another app ignored", "channel", p.cfg.Name)
			continue
		}
		payload, err := json.Marshal(storedEvent{PageID: ev.PageID, Standby: ev.Standby, Item: ev.Item.raw})
		if err != nil { // the item was decoded from valid JSON: cannot happen
			h.log.Error("webhook event not encodable; ignored", "channel", p.cfg.Name, "kind", ev.kind())
			continue
		}
		out = append(out, pairing.InboundEvent{
			Source:  dedupeSource,
			Key:     ev.dedupeKey(),
			Group:   ev.PageID + ":" + channel.Truncate(ev.psid(), 80),
			Payload: payload,
		})
	}
	return out
}

// handleInbound handles one stored event: the inbound worker calls it,
// with retries on error (the Graph API failing, the database down).
func (h *Hub) handleInbound(ctx context.Context, payload []byte) error {
	var se storedEvent
	if err := json.Unmarshal(payload, &se); err != nil {
		return fmt.Errorf("messenger: stored event: %w", pairing.ErrInboundDropped)
	}
	ev := event{PageID: se.PageID, Standby: se.Standby}
	if err := json.Unmarshal(se.Item, &ev.Item); err != nil {
		return fmt.Errorf("messenger: stored event item: %w", pairing.ErrInboundDropped)
	}
	p, ok := h.byID[se.PageID]
	if !ok {
		return fmt.Errorf("messenger: the event's page is no longer configured: %w", pairing.ErrInboundDropped)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if err := h.handle(ctx, p, ev); err != nil {
		return fmt.Errorf("messenger %s event on channel %s: %w", ev.kind(), p.cfg.Name, err)
	}
	return nil
}
