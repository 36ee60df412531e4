package pairing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Notifications by site user id: the site queues a message for a linked
// user (Service.Notify); it is written to the outbox with one delivery per
// lead in the same transaction; a Worker claims due deliveries with a
// lease, sends them through the lead's channel (its Channel), and records
// the result with a site event.

// DeliveryStatus is where one delivery stands.
type DeliveryStatus string

// Delivery statuses. Queued and sending are on their way; the others are
// final.
const (
	DeliveryQueued    DeliveryStatus = "queued"
	DeliverySending   DeliveryStatus = "sending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
	// DeliverySkipped: decided when the message was accepted, nothing was
	// sent (the lead had blocked the bot, or its channel is not configured).
	DeliverySkipped DeliveryStatus = "skipped"
)

// Final tells whether the status will not change any more.
func (s DeliveryStatus) Final() bool {
	return s == DeliveryDelivered || s == DeliveryFailed || s == DeliverySkipped
}

// Reasons a delivery failed or was skipped: stable words the site can
// switch on. LastError adds the platform's words after a colon.
const (
	ReasonBlocked           = "blocked"
	ReasonOutsideWindow     = "outside_window"
	ReasonThreadControlled  = "thread_controlled"
	ReasonRejected          = "rejected"
	ReasonRateLimited       = "rate_limited"
	ReasonUnavailable       = "unavailable"
	ReasonChannelMissing    = "channel_not_configured"
	ReasonTooManyAttempts   = "too_many_attempts"
	ReasonExpired           = "expired"
	ReasonTokenRefused      = "token_refused"
	idempotencyWindow       = 24 * time.Hour
	maxIdempotencyKeyLength = 255
)

// Button is a URL button under a notification, or, with Data, a button
// whose press comes back to the bot with Data (Telegram callback data, a
// Messenger postback payload): only pairingd's own messages (link
// notices) carry one; a site's request with data is refused.
type Button struct {
	Text string `json:"text"`
	URL  string `json:"url,omitempty"`
	Data string `json:"data,omitempty"`
}

// NotifyRequest is one call of POST /v1/users/{user_id}/messages.
type NotifyRequest struct {
	UserID  string
	Text    string
	Buttons []Button
	// Channels limits the deliveries to these channel names; empty: every
	// lead of the person.
	Channels []string
	// IdempotencyKey makes a retried request return the first answer.
	IdempotencyKey string
	KeyID          int64
}

// Message is a queued notification and its deliveries.
type Message struct {
	ID       int64
	UserID   string
	PersonID int64
	Text     string
	Buttons  []Button
	KeyID    int64
	// IdempotencyKey is empty when none was given.
	IdempotencyKey string
	// RequestHash tells a retry from another request with the same key.
	RequestHash []byte
	CreatedAt   time.Time
	Deliveries  []Delivery
	// Replayed: the answer is the stored one of an earlier request with the
	// same idempotency key; nothing new was queued.
	Replayed bool
}

// Delivery is the message to one lead.
type Delivery struct {
	ID         int64
	MessageID  int64
	LeadID     int64
	Channel    string
	ExternalID string
	Status     DeliveryStatus
	// Attempts counts the sends started (a claim is an attempt).
	Attempts int
	// LastError is the reason of the last failure ("blocked",
	// "unavailable: ..."); empty after a success.
	LastError     string
	NextAttemptAt time.Time
	// LeaseUntil and LeaseToken belong to the worker that claimed the
	// delivery; another worker may claim it once the lease has passed.
	LeaseUntil time.Time
	LeaseToken string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time // zero until final
	// RequeuedAt is when an operator put the failed delivery back in the
	// queue (pairingd messages retry); zero if never. The max age then
	// counts from it.
	RequeuedAt time.Time
}

// ClaimedDelivery is a delivery a worker claimed, with what it must send.
type ClaimedDelivery struct {
	Delivery
	UserID  string
	Text    string
	Buttons []Button
	// MessageCreatedAt starts the delivery's max age (or RequeuedAt, when
	// later: see maxAgeFrom).
	MessageCreatedAt time.Time
}

// maxAgeFrom is when the delivery's max age starts: the message's
// acceptance, or the operator's retry when later, so that a delivery an
// operator retries after a long outage is sent instead of expiring at once.
func (d ClaimedDelivery) maxAgeFrom() time.Time {
	if d.RequeuedAt.After(d.MessageCreatedAt) {
		return d.RequeuedAt
	}
	return d.MessageCreatedAt
}

// DeliveryResult is what a worker records when a send ended.
type DeliveryResult struct {
	Status        DeliveryStatus // queued (retry later), delivered or failed
	LastError     string
	NextAttemptAt time.Time // queued only
	// Uncount takes the claim's attempt back (a delivery released unsent).
	Uncount bool
}

// ClaimRequest says what a worker may claim.
type ClaimRequest struct {
	Now   time.Time
	Lease time.Duration
	Limit int
	Token string
}

// OutboxRepo keeps the notifications outbox.
type OutboxRepo interface {
	// CreateMessage inserts the message and its deliveries and sets their
	// ids. A message whose (KeyID, IdempotencyKey) is taken returns an
	// error wrapping ErrRaced.
	CreateMessage(ctx context.Context, m *Message) error
	// MessageByIdempotencyKey finds the message an API key sent with an
	// idempotency key, with its deliveries; ErrNotFound when none.
	MessageByIdempotencyKey(ctx context.Context, keyID int64, key string) (Message, error)
	// ForgetIdempotencyKey frees a message's idempotency key (its 24 hours
	// have passed) so a new request may use it.
	ForgetIdempotencyKey(ctx context.Context, messageID int64) error
	// MessageByID returns a message with its deliveries (ordered by id).
	MessageByID(ctx context.Context, id int64) (Message, error)
	// ClaimDeliveries takes up to Limit due deliveries: queued with
	// next_attempt_at <= Now, or sending with a lease that has passed. It
	// takes at most one per lead and none of a lead that has a delivery
	// under a live lease, so one chat gets one message at a time. Each
	// claimed delivery becomes sending with LeaseUntil = Now+Lease,
	// LeaseToken = Token and one more attempt. Concurrent claimers never
	// get the same delivery (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite:
	// the single writer).
	ClaimDeliveries(ctx context.Context, req ClaimRequest) ([]ClaimedDelivery, error)
	// FinishDelivery records the result of a claimed delivery, only while
	// it is still sending under leaseToken; it reports whether it did.
	FinishDelivery(ctx context.Context, id int64, leaseToken string, res DeliveryResult, now time.Time) (bool, error)
}

// ErrIdempotencyReused: the Idempotency-Key was used within 24 hours for a
// different request.
var ErrIdempotencyReused = errors.New("idempotency key reused with a different request")

// queued returns a channel that receives a value when a message was
// queued, so a worker can start at once instead of at its next poll.
func (s *Service) queued() chan struct{} {
	s.outbox.mu.Lock()
	defer s.outbox.mu.Unlock()
	if s.outbox.wake == nil {
		s.outbox.wake = make(chan struct{}, 1)
	}
	return s.outbox.wake
}

func (s *Service) wakeWorkers() {
	ch := s.queued()
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deliveryErrorOf reads a channel's Deliver error; anything else is a temporary
// failure.
func deliveryErrorOf(err error) *DeliveryError {
	var de *DeliveryError
	if errors.As(err, &de) {
		if de.Blocked {
			de.Permanent = true
		}
		if de.Reason == "" {
			de.Reason = ReasonRejected
		}
		return de
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &DeliveryError{Reason: ReasonUnavailable, Detail: "the send timed out"}
	}
	return &DeliveryError{Reason: ReasonUnavailable, Detail: fmt.Sprint(err)}
}

// outboxState is the Service's notification side: the wake-up of the
// workers.
type outboxState struct {
	mu   sync.Mutex
	wake chan struct{}
	// noticeQueued: a transaction queued a link notice; the workers are
	// woken once it committed (see wakeForNotices).
	noticeQueued atomic.Bool
}
