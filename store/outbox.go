package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pairingd/pairingd/pairing"
)

// The notifications outbox: outbox_messages and outbox_deliveries
// (migrations 0003_outbox.sql).

type outboxMessageRow struct {
	ID             int64   `gorm:"column:id;primaryKey"`
	UserID         string  `gorm:"column:user_id"`
	PersonID       int64   `gorm:"column:person_id"`
	Text           string  `gorm:"column:text"`
	Buttons        string  `gorm:"column:buttons"`
	KeyID          int64   `gorm:"column:key_id"`
	IdempotencyKey *string `gorm:"column:idempotency_key"`
	RequestHash    []byte  `gorm:"column:request_hash"`
	CreatedAt      int64   `gorm:"column:created_at;autoCreateTime:false"`
}

func (outboxMessageRow) TableName() string { return "outbox_messages" }

func (r outboxMessageRow) message() pairing.Message {
	m := pairing.Message{ID: r.ID, UserID: r.UserID, PersonID: r.PersonID, Text: r.Text, KeyID: r.KeyID,
		RequestHash: r.RequestHash, CreatedAt: tm(r.CreatedAt), Buttons: decodeButtons(r.Buttons)}
	if r.IdempotencyKey != nil {
		m.IdempotencyKey = *r.IdempotencyKey
	}
	return m
}

type outboxDeliveryRow struct {
	ID            int64  `gorm:"column:id;primaryKey"`
	MessageID     int64  `gorm:"column:message_id"`
	LeadID        int64  `gorm:"column:lead_id"`
	Channel       string `gorm:"column:channel"`
	ExternalID    string `gorm:"column:external_id"`
	Status        string `gorm:"column:status"`
	Attempts      int    `gorm:"column:attempts"`
	LastError     string `gorm:"column:last_error"`
	NextAttemptAt int64  `gorm:"column:next_attempt_at"`
	LeaseUntil    int64  `gorm:"column:lease_until"`
	LeaseToken    string `gorm:"column:lease_token"`
	CreatedAt     int64  `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt     int64  `gorm:"column:updated_at;autoUpdateTime:false"`
	FinishedAt    int64  `gorm:"column:finished_at"`
	RequeuedAt    int64  `gorm:"column:requeued_at"` // migration 0007
}

func (outboxDeliveryRow) TableName() string { return "outbox_deliveries" }

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
	row := outboxMessageRow{UserID: m.UserID, PersonID: m.PersonID, Text: m.Text, Buttons: string(buttons),
		KeyID: m.KeyID, RequestHash: m.RequestHash, CreatedAt: us(m.CreatedAt)}
	if m.IdempotencyKey != "" {
		k := m.IdempotencyKey
		row.IdempotencyKey = &k
	}
	err = r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		for i := range m.Deliveries {
			d := &m.Deliveries[i]
			dr := outboxDeliveryRow{
				MessageID: row.ID, LeadID: d.LeadID, Channel: d.Channel, ExternalID: d.ExternalID,
				Status: string(d.Status), LastError: d.LastError, NextAttemptAt: us(d.NextAttemptAt),
				CreatedAt: us(d.CreatedAt), UpdatedAt: us(d.UpdatedAt), FinishedAt: us(d.FinishedAt),
			}
			if err := tx.Create(&dr).Error; err != nil {
				return err
			}
			d.ID, d.MessageID = dr.ID, row.ID
		}
		return nil
	})
	if err != nil {
		return translate(err)
	}
	m.ID = row.ID
	return nil
}

func (r repo) MessageByIdempotencyKey(ctx context.Context, keyID int64, key string) (pairing.Message, error) {
	var row outboxMessageRow
	if err := take(ctx, r.r, &row, "key_id = ? AND idempotency_key = ?", keyID, key); err != nil {
		return pairing.Message{}, err
	}
	return r.withDeliveries(ctx, row)
}

func (r repo) ForgetIdempotencyKey(ctx context.Context, messageID int64) error {
	_, err := r.exec(ctx, `UPDATE outbox_messages SET idempotency_key = NULL WHERE id = ?`, messageID)
	return err
}

func (r repo) MessageByID(ctx context.Context, id int64) (pairing.Message, error) {
	var row outboxMessageRow
	if err := take(ctx, r.r, &row, "id = ?", id); err != nil {
		return pairing.Message{}, err
	}
	return r.withDeliveries(ctx, row)
}

func (r repo) withDeliveries(ctx context.Context, row outboxMessageRow) (pairing.Message, error) {
	m := row.message()
	var rows []outboxDeliveryRow
	if err := r.r.WithContext(ctx).Where("message_id = ?", row.ID).Order("id").Find(&rows).Error; err != nil {
		return pairing.Message{}, translate(err)
	}
	for _, d := range rows {
		m.Deliveries = append(m.Deliveries, d.delivery())
	}
	return m, nil
}

// dueCondition selects the deliveries a worker may claim at a time
// (twice the same parameter).
const dueCondition = `((status = 'queued' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until <= ?))`

// ClaimDeliveries takes due deliveries, one per lead, skipping leads with
// a delivery under a live lease. On PostgreSQL the candidates are locked
// FOR UPDATE SKIP LOCKED, so concurrent claimers (other instances) pass
// over each other's rows instead of waiting or taking them twice; on
// SQLite the transaction holds the one write lock. The UPDATE repeats the
// due condition, so a row can only be claimed while it is due.
//
// One chat at a time across instances: row locks alone do not give it on
// PostgreSQL, because two claims running at once lock different rows of
// one lead and neither sees the other's uncommitted claim. So a claimer
// also takes a transaction advisory lock per lead (lockLeads) and skips
// leads another claim holds; and the UPDATE, whose snapshot is taken after
// those locks, repeats "no live lease on this lead", which sees a claim
// that committed while this one was looking.
func (r repo) ClaimDeliveries(ctx context.Context, req pairing.ClaimRequest) ([]pairing.ClaimedDelivery, error) {
	if req.Limit <= 0 {
		return nil, nil
	}
	now := us(req.Now)
	var out []pairing.ClaimedDelivery
	err := r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		lock := ""
		if r.driver == Postgres {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var cands []struct {
			ID     int64 `gorm:"column:id"`
			LeadID int64 `gorm:"column:lead_id"`
		}
		q := `SELECT id, lead_id FROM outbox_deliveries d WHERE ` + dueCondition + `
		  AND NOT EXISTS (SELECT 1 FROM outbox_deliveries b
		                  WHERE b.lead_id = d.lead_id AND b.status = 'sending' AND b.lease_until > ?)
		  ORDER BY next_attempt_at, id LIMIT ?` + lock
		if err := tx.Raw(q, now, now, now, req.Limit*4).Scan(&cands).Error; err != nil {
			return err
		}
		first := map[int64]int64{} // lead -> its first candidate
		var leads []int64
		for _, c := range cands {
			if _, ok := first[c.LeadID]; !ok {
				first[c.LeadID] = c.ID
				leads = append(leads, c.LeadID)
			}
		}
		if r.driver == Postgres && len(leads) > 0 {
			locked, err := lockLeads(tx, leads, req.Limit)
			if err != nil {
				return err
			}
			leads = slices.DeleteFunc(leads, func(l int64) bool { return !slices.Contains(locked, l) })
		}
		var ids []int64
		for _, l := range leads[:min(len(leads), req.Limit)] {
			ids = append(ids, first[l])
		}
		if len(ids) == 0 {
			return nil
		}
		res := tx.Exec(`UPDATE outbox_deliveries SET status = 'sending', lease_until = ?, lease_token = ?,
		  attempts = attempts + 1, updated_at = ? WHERE id IN ? AND `+dueCondition+`
		  AND NOT EXISTS (SELECT 1 FROM outbox_deliveries b
		                  WHERE b.lead_id = outbox_deliveries.lead_id AND b.status = 'sending' AND b.lease_until > ?)`,
			us(req.Now.Add(req.Lease)), req.Token, now, ids, now, now, now)
		if res.Error != nil {
			return res.Error
		}
		var rows []outboxDeliveryRow
		if err := tx.Where("id IN ? AND lease_token = ? AND status = ?", ids, req.Token, string(pairing.DeliverySending)).
			Order("next_attempt_at, id").Find(&rows).Error; err != nil {
			return err
		}
		msgIDs := make([]int64, 0, len(rows))
		for _, row := range rows {
			msgIDs = append(msgIDs, row.MessageID)
		}
		var msgs []outboxMessageRow
		if err := tx.Where("id IN ?", msgIDs).Find(&msgs).Error; err != nil {
			return err
		}
		byID := make(map[int64]outboxMessageRow, len(msgs))
		for _, m := range msgs {
			byID[m.ID] = m
		}
		for _, row := range rows {
			m := byID[row.MessageID]
			out = append(out, pairing.ClaimedDelivery{
				Delivery: row.delivery(), UserID: m.UserID, Text: m.Text,
				Buttons: decodeButtons(m.Buttons), MessageCreatedAt: tm(m.CreatedAt),
			})
		}
		return nil
	})
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// leadLockClass is the first key of the advisory locks claimers take on
// leads (PostgreSQL's two-int key space, apart from migrationLock's).
const leadLockClass = 0x6f757462 // "outb"

// lockLeads takes, without waiting, the claim lock of up to limit of the
// leads, for the rest of the transaction, and returns the leads it got. A
// lead another transaction holds is skipped: that claimer is taking one of
// its deliveries right now. Lead ids fold onto the lock's 32-bit key; two
// leads that share a key only take turns. Advisory locks are per database,
// not per schema, so the first key mixes in the schema's name: two
// deployments in two schemas of one database (or parallel test runs) do
// not hold each other's leads. The leads are integers from the
// database, written into the statement because GORM would expand a slice
// argument.
func lockLeads(tx *gorm.DB, leads []int64, limit int) ([]int64, error) {
	var vals strings.Builder
	for i, l := range leads {
		if i > 0 {
			vals.WriteString(", ")
		}
		vals.WriteString("(" + strconv.FormatInt(l, 10) + ")")
	}
	var got []int64
	err := tx.Raw(`SELECT v.lead FROM (VALUES `+vals.String()+`) AS v(lead)
	  WHERE pg_try_advisory_xact_lock(CAST(? AS integer) # hashtext(current_schema()), CAST(v.lead % 2147483648 AS integer))
	  LIMIT ?`, leadLockClass, limit).Scan(&got).Error
	return got, err
}

// FinishDelivery records a result while the delivery is still sending
// under the caller's lease.
func (r repo) FinishDelivery(ctx context.Context, id int64, leaseToken string, res pairing.DeliveryResult, now time.Time) (bool, error) {
	set := map[string]any{
		"status": string(res.Status), "lease_until": 0, "lease_token": "", "updated_at": us(now),
	}
	if !res.Uncount {
		set["last_error"] = res.LastError
	} else {
		set["attempts"] = gorm.Expr("CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END")
	}
	if res.Status == pairing.DeliveryQueued {
		set["next_attempt_at"] = us(res.NextAttemptAt)
	}
	if res.Status.Final() {
		set["finished_at"] = us(now)
	}
	q := r.w.WithContext(ctx).Model(&outboxDeliveryRow{}).
		Where("id = ? AND lease_token = ? AND status = ?", id, leaseToken, string(pairing.DeliverySending)).Updates(set)
	return q.RowsAffected == 1, translate(q.Error)
}
