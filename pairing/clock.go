package pairing

import (
	"crypto/rand"
	"io"
	"time"
)

// Clock tells the time. Tests inject a fake one they can step.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// CryptoRand is the default source of randomness: crypto/rand.
var CryptoRand io.Reader = rand.Reader
