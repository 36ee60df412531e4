package pairing

import (
	"context"
	"errors"
	"time"
)

// The API key failure budget. A key may cause at most Config.KeyFailureBudget
// guessing refusals (countsAgainstKey) within Config.KeyFailureWindow; past
// that, every authorize of the key is rate_limited, the right PIN included,
// until the window ends. The count lives in the key's api_keys row
// (failures, window_start) so that it holds across instances, and it is
// exact for failures under any concurrency. Where it is enforced depends on
// whether the store serializes writes (WriteSerializer):
//
//   - Serialized writes (SQLite: one writer connection). The budget is
//     decided inside the transaction that decides the answer, because no
//     other writer can come between the check and the effect: the spend
//     holds only while the key has failures left (KeyGuard, part of the
//     spend's one statement); a refusal checks the budget (hasRoom) and takes
//     one failure (charge) in the same transaction. A success writes nothing
//     to api_keys.
//   - Concurrent writes (PostgreSQL). Checking inside the transaction would
//     need the key's row locked for the whole of it, which serializes all of
//     a site's requests. Instead one failure is reserved before anything is
//     evaluated, with a conditional UPDATE that holds only while the window
//     has room (open), and given back when the answer is not a guess: in the
//     deciding transaction for a decided answer (settleInTx), after it for a
//     refusal that does not count (settle). So concurrent attempts can never
//     evaluate more than the budget's guesses. The price: a reservation
//     counts until it is given back (a right PIN can be refused while the
//     budget is nearly used up by requests in flight), and a process killed
//     in between leaks its reservation until the window ends.
//
// POST /v1/links counts an unknown grant after the fact (addKeyFailure): it
// refuses nothing there, and weighs on the key's next authorize calls.
type keyBudget struct {
	s     *Service
	keyID int64
	// inTx: the budget is decided inside the deciding transaction.
	inTx bool
	// reserved: a failure was reserved up front and is still held.
	reserved bool
}

// keyBudgetFor says how the budget of keyID is kept for one authorize call.
// No key, or no budget configured: nothing is counted.
func (s *Service) keyBudgetFor(keyID int64) *keyBudget {
	b := &keyBudget{s: s, keyID: keyID}
	b.inTx = b.counts() && s.serialWrites
	return b
}

func (b *keyBudget) counts() bool { return b.keyID != 0 && b.s.cfg.KeyFailureBudget > 0 }

func (b *keyBudget) refusal() error {
	return &RetryError{Err: ErrRateLimited, RetryAfter: b.s.cfg.KeyFailureWindow}
}

// open reserves one failure before the attempt is evaluated (concurrent
// writes), or refuses the key when none is left.
func (b *keyBudget) open(ctx context.Context) error {
	if !b.counts() || b.inTx {
		return nil
	}
	s := b.s
	ok, err := s.store.ReserveKeyFailure(ctx, b.keyID, s.now(), s.cfg.KeyFailureWindow, s.cfg.KeyFailureBudget)
	if err != nil {
		return err
	}
	if !ok {
		return b.refusal()
	}
	b.reserved = true
	return nil
}

// guard is the condition the spend adds for the key (serialized writes).
func (b *keyBudget) guard(now time.Time) KeyGuard {
	if !b.inTx {
		return KeyGuard{}
	}
	return KeyGuard{KeyID: b.keyID, WindowStart: now.Add(-b.s.cfg.KeyFailureWindow), Budget: b.s.cfg.KeyFailureBudget}
}

// hasRoom refuses the key, inside the transaction, when its budget is
// used up, without taking any of it (serialized writes).
func (b *keyBudget) hasRoom(ctx context.Context, r Repo) error {
	if !b.inTx {
		return nil
	}
	n, err := r.KeyFailures(ctx, b.keyID, b.s.now(), b.s.cfg.KeyFailureWindow)
	if err != nil {
		return err
	}
	if n >= b.s.cfg.KeyFailureBudget {
		return b.refusal()
	}
	return nil
}

// charge takes one failure, inside the transaction, for a refusal that
// counts against the key (serialized writes), or refuses the key when none
// is left. It returns the answer to give.
func (b *keyBudget) charge(ctx context.Context, r Repo, refusal error) error {
	if !b.inTx || !countsAgainstKey(refusal) {
		return refusal
	}
	s := b.s
	ok, err := r.ReserveKeyFailure(ctx, b.keyID, s.now(), s.cfg.KeyFailureWindow, s.cfg.KeyFailureBudget)
	if err != nil {
		return err
	}
	if !ok {
		return b.refusal()
	}
	return refusal
}

// settleInTx gives the reservation back inside the transaction of a
// decided answer, so the answer and the refund commit together (or
// neither: then settle gives it back).
func (b *keyBudget) settleInTx(ctx context.Context, r Repo) error {
	if !b.reserved {
		return nil
	}
	return r.RefundKeyFailure(ctx, b.keyID, b.s.now(), b.s.cfg.KeyFailureWindow)
}

// settle ends the attempt with its answer (nil: a decided answer, whose
// transaction gave the reservation back). A refusal that does not count
// against the key (a used or expired PIN, an invalid request, a store
// error) gives it back now; a counted refusal keeps it: it is the failure.
func (b *keyBudget) settle(ctx context.Context, answer error) {
	if !b.reserved || answer == nil || countsAgainstKey(answer) {
		return
	}
	s := b.s
	if err := s.store.RefundKeyFailure(ctx, b.keyID, s.now(), s.cfg.KeyFailureWindow); err != nil {
		s.log.Error("refund key failure", "key_id", b.keyID, "err", err)
	}
}

// addKeyFailure counts one failure of the key after the fact.
func (s *Service) addKeyFailure(ctx context.Context, keyID int64) {
	if keyID == 0 || s.cfg.KeyFailureBudget == 0 {
		return
	}
	if _, err := s.store.AddKeyFailure(ctx, keyID, s.now(), s.cfg.KeyFailureWindow); err != nil {
		s.log.Error("count key failure", "key_id", keyID, "err", err)
	}
}

// countsAgainstKey: the refusals that look like guessing.
func countsAgainstKey(err error) bool {
	return errors.Is(err, ErrBUIDUnknown) || errors.Is(err, ErrPINInvalid) ||
		errors.Is(err, ErrPINLocked) || errors.Is(err, ErrGrantUnknown)
}
