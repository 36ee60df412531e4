package pairingtest

import (
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// outboxState is the fake's notifications outbox.
type outboxState struct {
	messages   map[int64]pairing.Message // without deliveries
	deliveries map[int64]pairing.Delivery
}

func (o outboxState) clone() outboxState {
	return outboxState{messages: maps.Clone(o.messages), deliveries: maps.Clone(o.deliveries)}
}

// Deliveries returns every delivery in the outbox, by id.
func (m *MemStore) Deliveries() []pairing.Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pairing.Delivery
	for _, d := range m.st.outbox.deliveries {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetDelivery overwrites a stored delivery (tests that stage a crash).
func (m *MemStore) SetDelivery(d pairing.Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.outbox.deliveries[d.ID] = d
}

func (m *MemStore) CreateMessage(ctx context.Context, msg *pairing.Message) error {
	return m.do(func(r repo) error { return r.CreateMessage(ctx, msg) })
}
func (r repo) CreateMessage(_ context.Context, msg *pairing.Message) error {
	o := &r.st.outbox
	if o.messages == nil {
		o.messages, o.deliveries = map[int64]pairing.Message{}, map[int64]pairing.Delivery{}
	}
	if msg.IdempotencyKey != "" {
		for _, other := range o.messages {
			if other.KeyID == msg.KeyID && other.IdempotencyKey == msg.IdempotencyKey {
				return pairing.ErrRaced
			}
		}
	}
	msg.ID = r.id()
	stored := *msg
	stored.Deliveries, stored.Buttons = nil, slices.Clone(msg.Buttons)
	o.messages[msg.ID] = stored
	for i := range msg.Deliveries {
		d := &msg.Deliveries[i]
		d.ID, d.MessageID = r.id(), msg.ID
		o.deliveries[d.ID] = *d
	}
	return nil
}

func (r repo) messageWithDeliveries(id int64) (pairing.Message, error) {
	msg, ok := r.st.outbox.messages[id]
	if !ok {
		return pairing.Message{}, pairing.ErrNotFound
	}
	msg.Buttons = slices.Clone(msg.Buttons)
	for _, d := range r.st.outbox.deliveries {
		if d.MessageID == id {
			msg.Deliveries = append(msg.Deliveries, d)
		}
	}
	sort.Slice(msg.Deliveries, func(i, j int) bool { return msg.Deliveries[i].ID < msg.Deliveries[j].ID })
	return msg, nil
}

func (m *MemStore) MessageByIdempotencyKey(ctx context.Context, keyID int64, key string) (out pairing.Message, err error) {
	err = m.do(func(r repo) error { out, err = r.MessageByIdempotencyKey(ctx, keyID, key); return err })
	return
}
func (r repo) MessageByIdempotencyKey(_ context.Context, keyID int64, key string) (pairing.Message, error) {
	for id, msg := range r.st.outbox.messages {
		if msg.KeyID == keyID && msg.IdempotencyKey == key && key != "" {
			return r.messageWithDeliveries(id)
		}
	}
	return pairing.Message{}, pairing.ErrNotFound
}

func (m *MemStore) ForgetIdempotencyKey(ctx context.Context, id int64) error {
	return m.do(func(r repo) error { return r.ForgetIdempotencyKey(ctx, id) })
}
func (r repo) ForgetIdempotencyKey(_ context.Context, id int64) error {
	msg, ok := r.st.outbox.messages[id]
	if !ok {
		return pairing.ErrNotFound
	}
	msg.IdempotencyKey = ""
	r.st.outbox.messages[id] = msg
	return nil
}

func (m *MemStore) MessageByID(ctx context.Context, id int64) (out pairing.Message, err error) {
	err = m.do(func(r repo) error { out, err = r.MessageByID(ctx, id); return err })
	return
}
func (r repo) MessageByID(_ context.Context, id int64) (pairing.Message, error) {
	return r.messageWithDeliveries(id)
}

func (m *MemStore) ClaimDeliveries(ctx context.Context, req pairing.ClaimRequest) (out []pairing.ClaimedDelivery, err error) {
	err = m.do(func(r repo) error { out, err = r.ClaimDeliveries(ctx, req); return err })
	return
}

// due tells whether a delivery may be claimed at now.
func due(d pairing.Delivery, now time.Time) bool {
	return d.Status == pairing.DeliveryQueued && !d.NextAttemptAt.After(now) ||
		d.Status == pairing.DeliverySending && !d.LeaseUntil.After(now)
}

func (r repo) ClaimDeliveries(_ context.Context, req pairing.ClaimRequest) ([]pairing.ClaimedDelivery, error) {
	o := &r.st.outbox
	busy := map[int64]bool{}
	var cands []pairing.Delivery
	for _, d := range o.deliveries {
		if d.Status == pairing.DeliverySending && d.LeaseUntil.After(req.Now) {
			busy[d.LeadID] = true
		}
		if due(d, req.Now) {
			cands = append(cands, d)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].NextAttemptAt.Equal(cands[j].NextAttemptAt) {
			return cands[i].NextAttemptAt.Before(cands[j].NextAttemptAt)
		}
		return cands[i].ID < cands[j].ID
	})
	var out []pairing.ClaimedDelivery
	for _, d := range cands {
		if len(out) >= req.Limit {
			break
		}
		if busy[d.LeadID] {
			continue
		}
		busy[d.LeadID] = true
		d.Status, d.LeaseUntil, d.LeaseToken = pairing.DeliverySending, req.Now.Add(req.Lease), req.Token
		d.Attempts++
		d.UpdatedAt = req.Now
		o.deliveries[d.ID] = d
		msg := o.messages[d.MessageID]
		out = append(out, pairing.ClaimedDelivery{Delivery: d, UserID: msg.UserID, Text: msg.Text,
			Buttons: slices.Clone(msg.Buttons), MessageCreatedAt: msg.CreatedAt})
	}
	return out, nil
}

func (m *MemStore) FinishDelivery(ctx context.Context, id int64, token string, res pairing.DeliveryResult, now time.Time) (ok bool, err error) {
	err = m.do(func(r repo) error { ok, err = r.FinishDelivery(ctx, id, token, res, now); return err })
	return
}
func (r repo) FinishDelivery(_ context.Context, id int64, token string, res pairing.DeliveryResult, now time.Time) (bool, error) {
	d, ok := r.st.outbox.deliveries[id]
	if !ok || d.Status != pairing.DeliverySending || d.LeaseToken != token {
		return false, nil
	}
	d.Status, d.UpdatedAt = res.Status, now
	if !res.Uncount {
		d.LastError = res.LastError
	}
	d.LeaseUntil, d.LeaseToken = time.Time{}, ""
	if res.Status == pairing.DeliveryQueued {
		d.NextAttemptAt = res.NextAttemptAt
	}
	if res.Uncount && d.Attempts > 0 {
		d.Attempts--
	}
	if res.Status.Final() {
		d.FinishedAt = now
	}
	r.st.outbox.deliveries[id] = d
	return true, nil
}
