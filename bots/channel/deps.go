// Package channel holds what every channel adapter (bots/telegram,
// bots/messenger, ...) is built from besides its own configuration, so
// that all adapters have the same constructor shape:
//
//	func New(cfg Config, deps channel.Deps[Pairing]) (..., error)
//
// where Pairing is the small interface of pairing.Service methods the
// adapter calls. The contract the service sees, pairing.Channel, is
// declared in package pairing.
package channel

import (
	"context"
	"errors"
	"log/slog"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/templates"
)

// Intake is the inbound queue (a *pairing.InboundWorker): an adapter
// stores every platform event with Accept (webhook deliveries, polled
// updates) and registers with Handle the handler the worker calls for
// them. The queue's unique (source, key) is the one dedupe, its groups
// the one order-per-person rule.
type Intake interface {
	Accept(ctx context.Context, evs []pairing.InboundEvent) error
	Handle(source string, h pairing.InboundHandler)
}

var _ Intake = (*pairing.InboundWorker)(nil)

// Deps is what an adapter needs of the rest of the process. S is the
// adapter's own interface of the service methods it calls.
type Deps[S any] struct {
	Service S
	Intake  Intake
	Texts   *templates.Catalog
	// Log may be nil: nothing is logged.
	Log *slog.Logger
	// Clock may be nil: the system clock.
	Clock pairing.Clock
	// Observer is told of every message the adapter sends to its
	// platform (pairing.Observer.PlatformSend). Nil: nothing is counted.
	Observer pairing.Observer
}

// WithDefaults checks the required parts and fills the optional ones.
func (d Deps[S]) WithDefaults() (Deps[S], error) {
	if any(d.Service) == nil || d.Intake == nil || d.Texts == nil {
		return d, errors.New("the pairing service, the inbound intake and the texts are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = pairing.SystemClock{}
	}
	if d.Observer == nil {
		d.Observer = pairing.NopObserver{}
	}
	return d, nil
}
