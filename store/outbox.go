package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pairingd/pairingd/pairing"
)

// The notifications outbox: outbox_messages and outbox_deliveries
// (migration 0003); the deliveries' claim and results are in deliveries.go.

type outboxMessageRow struct {
	ID             int64   `db:"id"`
	UserID         string  `db:"user_id"`
	PersonID       int64   `db:"person_id"`
	Text           string  `db:"text"`
	Buttons        string  `db:"buttons"`
	KeyID          int64   `db:"key_id"`
	IdempotencyKey *string `db:"idempotency_key"`
	RequestHash    []byte  `db:"request_hash"`
	CreatedAt      int64   `db:"created_at"`
}

func (r outboxMessageRow) message() pairing.Message {
	m := pairing.Message{ID: r.ID, UserID: r.UserID, PersonID: r.PersonID, Text: r.Text, KeyID: r.KeyID,
		RequestHash: r.RequestHash, CreatedAt: tm(r.CreatedAt), Buttons: decodeButtons(r.Buttons)}
	if r.IdempotencyKey != nil {
		m.IdempotencyKey = *r.IdempotencyKey
	}
	return m
}

type outboxDeliveryRow struct {
	ID            int64  `db:"id"`
	MessageID     int64  `db:"message_id"`
	LeadID        int64  `db:"lead_id"`
	Channel       string `db:"channel"`
	ExternalID    string `db:"external_id"`
	Status        string `db:"status"`
	Attempts      int    `db:"attempts"`
	LastError     string `db:"last_error"`
	NextAttemptAt int64  `db:"next_attempt_at"`
	LeaseUntil    int64  `db:"lease_until"`
	LeaseToken    string `db:"lease_token"`
	CreatedAt     int64  `db:"created_at"`
	UpdatedAt     int64  `db:"updated_at"`
	FinishedAt    int64  `db:"finished_at"`
	RequeuedAt    int64  `db:"requeued_at"` // migration 0007
}

func (r outboxDeliveryRow) delivery() pairing.Delivery {
	return pairing.Delivery{
		ID: r.ID, MessageID: r.MessageID, LeadID: r.LeadID, Channel: r.Channel, ExternalID: r.ExternalID,
		Status: pairing.DeliveryStatus(r.Status), Attempts: r.Attempts, LastError: r.LastError,
		NextAttemptAt: tm(r.NextAttemptAt), LeaseUntil: tm(r.LeaseUntil), LeaseToken: r.LeaseToken,
		CreatedAt: tm(r.CreatedAt), UpdatedAt: tm(r.UpdatedAt), FinishedAt: tm(r.FinishedAt),
		RequeuedAt: tm(r.RequeuedAt),
	}
}

func decodeButtons(s string) []pairing.Button {
	var b []pairing.Button
	if s == "" || json.Unmarshal([]byte(s), &b) != nil {
		return nil
	}
	return b
}

// CreateMessage inserts the message and its deliveries together (in a
// savepoint when already inside a transaction).
func (r repo) CreateMessage(ctx context.Context, m *pairing.Message) error {
	buttons, err := json.Marshal(m.Buttons)
	if err != nil {
		return fmt.Errorf("store: buttons: %w", err)
	}
	if m.Buttons == nil {
		buttons = []byte("[]")
	}
	var idemKey *string
	if m.IdempotencyKey != "" {
		idemKey = &m.IdempotencyKey
	}
	var id int64
	err = r.atomic(ctx, func(tx repo) error {
		if err := tx.queryOne(ctx, tx.w, `INSERT INTO outbox_messages
			(user_id, person_id, text, buttons, key_id, idempotency_key, request_hash, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			[]any{m.UserID, m.PersonID, m.Text, string(buttons), m.KeyID, idemKey, m.RequestHash, us(m.CreatedAt)}, &id); err != nil {
			return err
		}
		for i := range m.Deliveries {
			d := &m.Deliveries[i]
			if err := tx.queryOne(ctx, tx.w, `INSERT INTO outbox_deliveries
				(message_id, lead_id, channel, external_id, status, last_error, next_attempt_at, created_at, updated_at, finished_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				[]any{id, d.LeadID, d.Channel, d.ExternalID, string(d.Status), d.LastError, us(d.NextAttemptAt),
					us(d.CreatedAt), us(d.UpdatedAt), us(d.FinishedAt)}, &d.ID); err != nil {
				return err
			}
			d.MessageID = id
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.ID = id
	return nil
}

func (r repo) MessageByIdempotencyKey(ctx context.Context, keyID int64, key string) (pairing.Message, error) {
	return r.message(ctx, "key_id = ? AND idempotency_key = ?", keyID, key)
}

func (r repo) ForgetIdempotencyKey(ctx context.Context, messageID int64) error {
	_, err := r.exec(ctx, `UPDATE outbox_messages SET idempotency_key = NULL WHERE id = ?`, messageID)
	return err
}

func (r repo) MessageByID(ctx context.Context, id int64) (pairing.Message, error) {
	return r.message(ctx, "id = ?", id)
}

// message reads the message that matches where, with its deliveries.
func (r repo) message(ctx context.Context, where string, args ...any) (pairing.Message, error) {
	row, err := getRow[outboxMessageRow](ctx, r, r.r, `SELECT `+columnsOf[outboxMessageRow]("")+` FROM outbox_messages WHERE `+where, args...)
	if err != nil {
		return pairing.Message{}, err
	}
	m := row.message()
	rows, err := listRows[outboxDeliveryRow](ctx, r, r.r, `SELECT `+columnsOf[outboxDeliveryRow]("")+` FROM outbox_deliveries
		WHERE message_id = ? ORDER BY id`, row.ID)
	if err != nil {
		return pairing.Message{}, err
	}
	for _, d := range rows {
		m.Deliveries = append(m.Deliveries, d.delivery())
	}
	return m, nil
}
