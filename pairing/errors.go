package pairing

import (
	"errors"
	"fmt"
	"time"
)

// Domain errors. Each is a stable value that api/errors.go maps to one HTTP
// status and code, and that the bots map to a chat text. Errors carrying
// detail wrap one of these and are found with errors.Is / errors.As.
var (
	ErrInvalid            = errors.New("invalid request")
	ErrBUIDUnknown        = errors.New("buid unknown")
	ErrPINInvalid         = errors.New("pin invalid")
	ErrPINExpired         = errors.New("pin expired")
	ErrPINUsed            = errors.New("pin already used")
	ErrPINLocked          = errors.New("pin locked after too many wrong attempts")
	ErrRateLimited        = errors.New("rate limited")
	ErrGrantUnknown       = errors.New("grant unknown")
	ErrGrantExpired       = errors.New("grant expired")
	ErrGrantUsed          = errors.New("grant already used")
	ErrGrantMismatch      = errors.New("grant was issued for another user")
	ErrConflict           = errors.New("link conflict")
	ErrNotLinked          = errors.New("not linked")
	ErrNotFound           = errors.New("not found")
	ErrChannelUnavailable = errors.New("channel unavailable")
	ErrChannelFailed      = errors.New("channel failed to send")
	ErrUnauthorized       = errors.New("unauthorized")
	ErrUnavailable        = errors.New("service unavailable")
	ErrTokenUnknown       = errors.New("link token unknown")
	ErrTokenExpired       = errors.New("link token expired")
	ErrTokenUsed          = errors.New("link token already used")

	// ErrRaced is returned by a Store when a concurrent write committed
	// first: a unique index refused the row, a conditional update found the
	// row changed, or PostgreSQL gave up one of two colliding transactions.
	// The caller runs its transaction again and decides on what it sees.
	ErrRaced = errors.New("lost a race with a concurrent write")
)

// FieldError is a validation failure of one input field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// AttemptsError carries the state of the wrong-PIN counter with
// ErrPINInvalid or ErrPINLocked.
type AttemptsError struct {
	Err          error
	AttemptsLeft int
	LockedUntil  time.Time // zero unless locked
}

func (e *AttemptsError) Error() string { return e.Err.Error() }

// Unwrap returns ErrPINInvalid or ErrPINLocked.
func (e *AttemptsError) Unwrap() error { return e.Err }

// RetryError says when to try again, with ErrRateLimited or ErrPINLocked.
type RetryError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped domain error.
func (e *RetryError) Unwrap() error { return e.Err }

// ConflictError carries the conflict with ErrConflict.
type ConflictError struct {
	Conflict Conflict
}

func (e *ConflictError) Error() string { return fmt.Sprintf("link conflict: %s", e.Conflict.Kind) }

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// ChannelError says which channel could not send, with ErrChannelUnavailable
// or ErrChannelFailed. Cause is for the log; it is never shown to callers.
type ChannelError struct {
	Err     error
	Channel string
	Cause   error
}

func (e *ChannelError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("channel %q: %v: %v", e.Channel, e.Err, e.Cause)
	}
	return fmt.Sprintf("channel %q: %v", e.Channel, e.Err)
}

// Unwrap returns the domain error.
func (e *ChannelError) Unwrap() error { return e.Err }
