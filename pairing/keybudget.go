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
// (failures, window_start), so it holds across instances. It is kept the
// same way on both engines, inside the transaction that decides the
// answer, and nothing is ever reserved:
//
//   - A right PIN is spent by one statement (SpendCredential) whose
//     condition includes the key's room (KeyGuard): it READS the key's row
//     and never writes or locks it. So successes do not queue on their
//     key, and a correct PIN is refused only when the failures already
//     committed fill the budget.
//   - A refusal that counts (wrong PIN, unknown BUID, locked row) takes
//     one failure with a conditional UPDATE of the key's row (charge):
//     it changes the row only while the window has room, and the store
//     re-checks that condition on the newest committed row (SQLite: one
//     writer at a time; PostgreSQL: the UPDATE waits for a concurrent
//     charge to commit and evaluates its WHERE again on the new row). Only
//     failing requests write, and lock, the key's row.
//   - When the charge finds no room, the answer is rate_limited and the
//     transaction is rolled back: the wrong-PIN count of the row is left as
//     if the guess had not been evaluated, and nothing is counted.
//   - A refusal that does not count (a used or expired PIN) only reads the
//     key (hasRoom) so that a key past its budget learns nothing more.
//
// The guarantee, on any number of instances: the failures counted in a
// window never exceed the budget, and no wrong guess past it is answered
// or counted on its row (exact for failures). A right PIN is served when
// the key had room at the moment its spend ran; on PostgreSQL, a right PIN
// whose spend began before concurrent failures used up the budget still
// succeeds (its statement saw room), so past the budget at most the right
// guesses already in flight, one spend per database connection, can
// succeed. A process killed at any point leaves nothing charged: a charge
// commits with its answer or not at all.
//
// POST /v1/links counts an unknown grant after the fact (addKeyFailure): it
// refuses nothing there, and weighs on the key's next authorize calls.
type keyBudget struct {
	s     *Service
	keyID int64
}

// keyBudgetFor is the budget of keyID for one call. No key, or no budget
// configured: nothing is counted.
func (s *Service) keyBudgetFor(keyID int64) keyBudget { return keyBudget{s: s, keyID: keyID} }

func (b keyBudget) counts() bool { return b.keyID != 0 && b.s.cfg.KeyFailureBudget > 0 }

func (b keyBudget) refusal() error {
	return &RetryError{Err: ErrRateLimited, RetryAfter: b.s.cfg.KeyFailureWindow}
}

// guard is the condition the spend adds for the key: room in its window.
func (b keyBudget) guard(now time.Time) KeyGuard {
	if !b.counts() {
		return KeyGuard{}
	}
	return KeyGuard{KeyID: b.keyID, WindowStart: now.Add(-b.s.cfg.KeyFailureWindow), Budget: b.s.cfg.KeyFailureBudget}
}

// hasRoom refuses the key when its budget is used up, without taking any
// of it: one read of the key's row.
func (b keyBudget) hasRoom(ctx context.Context, r Repo, now time.Time) error {
	if !b.counts() {
		return nil
	}
	n, err := r.KeyFailures(ctx, b.keyID, now, b.s.cfg.KeyFailureWindow)
	if err != nil {
		return err
	}
	if n >= b.s.cfg.KeyFailureBudget {
		return b.refusal()
	}
	return nil
}

// charge takes one failure for a refusal that counts against the key and
// returns the answer to give: the refusal itself, or rate_limited when the
// budget had no room left (the caller then rolls back what the refusal
// wrote), or a store error.
func (b keyBudget) charge(ctx context.Context, r Repo, refusal error, now time.Time) error {
	if !b.counts() || !countsAgainstKey(refusal) {
		return refusal
	}
	s := b.s
	ok, err := r.ChargeKeyFailure(ctx, b.keyID, now, s.cfg.KeyFailureWindow, s.cfg.KeyFailureBudget)
	if err != nil {
		return err
	}
	if !ok {
		return b.refusal()
	}
	return refusal
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
