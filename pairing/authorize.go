package pairing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// POST /v1/authorize {buid, pin, user_id?}: every branch, in the order the
// code decides them, and where. A refusal is an error; a decided answer is
// a Result with an Outcome.
//
//	state found                             user_id  answer                              decided in
//	--------------------------------------  -------  ----------------------------------  --------------------------------
//	pin or user_id malformed; pin missing   any      invalid_request, nothing counted    Authorize
//	  while magic links are off
//	API key's failure budget used up        any      rate_limited (retry after window)   a right PIN: the spend's
//	  (keybudget.go; one rule on both                                                    KeyGuard; used/expired:
//	  engines, all in the deciding                                                       hasRoom; a counted refusal:
//	  transaction)                                                                       charge, which rolls back
//	                                                                                     the guess when out of room
//	BUID malformed                          any      buid_unknown (charged)              refuseUndecodable
//	BUID unknown or rotated                 any      buid_unknown (charged)              refuse
//	row locked after MaxAttempts wrong      any      pin_locked until the cool-down      refuse (pinLock.lockedAt)
//	  PINs (even the right PIN)
//	PIN wrong                               any      pin_invalid + attempts left; the    refuse -> wrongPIN
//	                                                 last one locks: pin_locked          (pinLock.afterWrongPIN)
//	PIN already used / expired              any      pin_used / pin_expired              credentialState
//	right PIN, spent meanwhile by another   any      pin_used                            refuse (last line)
//	  request
//	person linked to U                      none     match, user_id U                    decide
//	person linked to U                      U        already_linked, user_id U           decide
//	person linked to U                      V != U   conflict bot_linked_elsewhere       decide -> link (ConflictError)
//	                                                 + grant (relink with replace)
//	person not linked; V linked to another  V        conflict user_linked_elsewhere      decide -> link (ConflictError)
//	  person on the same channel                     + grant
//	person not linked (V free, or linked    V        linked (the persons merge when V    decide -> link
//	  on another channel only)                       is linked on another channel)
//	person not linked                       none     register + grant + lead profile     decide
//
// The PIN is spent by one conditional UPDATE (SpendCredential) that holds
// only for the row's current BUID and PIN, unused, unexpired and not
// locked, so exactly one request spends it, on any number of instances.
// Only when it changes no row is the reason read (refuse). Magic-link mode
// (Config.MagicLinkTTL > 0) spends the BUID alone, once, before MagicExpiresAt.
const grantPrefix = "pgr_"

// lookupBUID finds the web_users row a BUID names and checks its secret.
// Anything that is not the row's current BUID is ErrBUIDUnknown.
func (s *Service) lookupBUID(ctx context.Context, buid string) (WebUser, []byte, error) {
	rowID, secret, ok := s.buid.decode(buid)
	if !ok {
		return WebUser{}, nil, ErrBUIDUnknown
	}
	wu, err := s.store.WebUserByID(ctx, rowID)
	if errors.Is(err, ErrNotFound) {
		return WebUser{}, nil, ErrBUIDUnknown
	}
	if err != nil {
		return WebUser{}, nil, err
	}
	h := HashToken(secret)
	if !equalHash(wu.BUIDHash, h) {
		return WebUser{}, nil, ErrBUIDUnknown
	}
	return wu, h, nil
}

// Authorize is POST /v1/authorize: it checks BUID and PIN, spends the PIN
// exactly once, and decides the answer from the link state (the table at
// the top of this file). Refusals are errors: ErrBUIDUnknown,
// *AttemptsError (ErrPINInvalid / ErrPINLocked), ErrPINExpired, ErrPINUsed,
// *RetryError (ErrRateLimited), *FieldError.
func (s *Service) Authorize(ctx context.Context, req AuthorizeRequest) (Result, error) {
	if req.UserID != "" {
		if err := ValidateUserID("user_id", req.UserID); err != nil {
			return Result{}, err
		}
	}
	pin := ""
	if req.PIN == "" {
		if s.cfg.MagicLinkTTL <= 0 {
			return Result{}, invalid("pin", "is required")
		}
	} else {
		var ok bool
		if pin, ok = NormalizePIN(req.PIN, s.cfg.PINLength); !ok {
			return Result{}, invalid("pin", "must be exactly "+strconv.Itoa(s.cfg.PINLength)+" digits")
		}
	}
	res, err := s.authorize(ctx, req, pin)
	if !res.audited {
		s.audit(ctx, s.store, AuditEvent{Action: authorizeAction(req), KeyID: req.KeyID, WebUserID: res.webUserID,
			PersonID: res.PersonID, UserID: req.UserID, Outcome: errorCode(err)})
	}
	return res.Result, err
}

type authorized struct {
	Result
	webUserID int64
	// audited: the answer's audit row was written in the transaction that
	// decided it (every answer that commits: successes and counted or
	// explained refusals). Answers whose transaction rolled back (rate
	// limited by the key's budget, store errors) are audited after it.
	audited bool
}

// authorize decides the answer in ONE transaction, on both engines. In
// the common case it is one statement, the conditional spend, then the
// reads and writes of the answer (decide) and the audit row, and one
// commit. The key's failure budget (keybudget.go) is enforced at three
// points of it: the spend holds only while the key has room (KeyGuard, a
// read); a refusal that does not count is answered rate_limited when the
// key has no room (hasRoom, a read); a refusal that counts takes one
// failure last, just before the commit (charge, the only write to the
// key's row), and when that finds no room the whole transaction rolls
// back and the answer is rate_limited.
func (s *Service) authorize(ctx context.Context, req AuthorizeRequest, pin string) (authorized, error) {
	budget := s.keyBudgetFor(req.KeyID)
	rowID, secret, ok := s.buid.decode(req.BUID)
	if !ok {
		return s.refuseUndecodable(ctx, req, budget)
	}
	buidHash := HashToken(secret)
	var pinH []byte
	if pin != "" {
		pinH = pinHash(s.cfg.Secret, rowID, pin)
	}
	now := s.now()
	var out authorized
	var refusal error
	guard := budget.guard(now)
	err := s.withRetry(ctx, func(r Repo) error {
		out, refusal = authorized{}, nil
		cur, spent, err := r.SpendCredential(ctx, rowID, buidHash, pinH, now, guard)
		if err != nil {
			return err
		}
		if !spent {
			// The key's budget first: once it is used up, every answer is
			// rate_limited, and nothing about the row is read.
			if err := budget.hasRoom(ctx, r, now); err != nil {
				return err
			}
			out, refusal, err = s.refuse(ctx, r, rowID, buidHash, pinH, now)
			if err != nil {
				return err
			}
			s.audit(ctx, r, AuditEvent{Action: authorizeAction(req), Outcome: errorCode(refusal), KeyID: req.KeyID,
				WebUserID: out.webUserID, PersonID: out.PersonID, UserID: req.UserID})
			// Last, so that a concurrent charge of the same key waits for
			// the shortest time: the key's row stays locked until commit.
			if answer := budget.charge(ctx, r, refusal, now); answer != refusal {
				return answer // no room (rate_limited) or a store error: roll back the guess
			}
			out.audited = true
			return nil // commit the counts (wrong PIN, key budget) and the audit
		}
		out = authorized{webUserID: cur.ID, Result: Result{PersonID: cur.PersonID}}
		var grant *GrantRecord
		if req.signIn {
			out.Result = signedIn(cur.WebUser, cur.Lead)
		} else {
			out.Result, grant, err = s.decide(ctx, r, cur.WebUser, cur.Lead, req.UserID)
		}
		if err != nil {
			return err
		}
		ev := AuditEvent{Action: authorizeAction(req), Outcome: string(out.Outcome), KeyID: req.KeyID,
			WebUserID: cur.ID, PersonID: out.PersonID, UserID: req.UserID}
		if grant != nil {
			out.Grant, err = s.newGrant(ctx, r, *grant, ev)
			if err != nil {
				return err
			}
		} else {
			s.audit(ctx, r, ev)
		}
		out.audited = true
		return nil
	})
	if err != nil {
		out.audited = false
		return out, err
	}
	return out, refusal
}

// refuseUndecodable answers a BUID that names no row: buid_unknown, charged
// to the key with the audit row in one transaction (or rate_limited when
// the key has no room left).
func (s *Service) refuseUndecodable(ctx context.Context, req AuthorizeRequest, budget keyBudget) (authorized, error) {
	if !budget.counts() {
		return authorized{}, ErrBUIDUnknown
	}
	now := s.now()
	var out authorized
	err := s.store.Tx(ctx, func(r Repo) error {
		if err := budget.charge(ctx, r, ErrBUIDUnknown, now); !errors.Is(err, ErrBUIDUnknown) {
			return err
		}
		s.audit(ctx, r, AuditEvent{Action: authorizeAction(req), Outcome: errorCode(ErrBUIDUnknown), KeyID: req.KeyID, UserID: req.UserID})
		out.audited = true
		return nil
	})
	if err != nil {
		return authorized{}, err
	}
	return out, ErrBUIDUnknown
}

// refuse explains a credential that could not be spent, from the row as
// it is now, and counts a wrong PIN: an unknown or rotated BUID, a lock,
// a wrong PIN, a used or expired credential (the table's order).
func (s *Service) refuse(ctx context.Context, r Repo, rowID int64, buidHash, pinH []byte, now time.Time) (authorized, error, error) {
	wu, err := r.WebUserByID(ctx, rowID)
	if errors.Is(err, ErrNotFound) {
		return authorized{}, ErrBUIDUnknown, nil
	}
	if err != nil {
		return authorized{}, nil, err
	}
	if !equalHash(wu.BUIDHash, buidHash) {
		return authorized{}, ErrBUIDUnknown, nil
	}
	out := authorized{webUserID: wu.ID, Result: Result{PersonID: wu.PersonID}}
	if s.pinLock().lockedAt(attemptsOf(wu), now) {
		return out, &AttemptsError{Err: ErrPINLocked, LockedUntil: wu.LockedUntil}, nil
	}
	if pinH != nil && !equalHash(pinH, wu.PINHash) {
		refusal := s.wrongPIN(ctx, r, wu, now)
		var ae *AttemptsError
		if !errors.As(refusal, &ae) {
			return out, nil, refusal // a store error
		}
		return out, refusal, nil
	}
	if err := credentialState(wu, pinH == nil, now); err != nil {
		return out, err, nil
	}
	// Spendable now: it changed between the update and this read (only
	// possible where writers do not serialize); the PIN is gone for us.
	return out, ErrPINUsed, nil
}

// PINAttempts is a web_users row's wrong-PIN state: the failures counted
// and the end of the lock they caused (zero: not locked).
type PINAttempts struct {
	Failed      int
	LockedUntil time.Time
}

func attemptsOf(wu WebUser) PINAttempts {
	return PINAttempts{Failed: wu.FailedAttempts, LockedUntil: wu.LockedUntil}
}

// pinLock is the wrong-PIN rule of a web_users row: MaxAttempts wrong PINs
// lock the row for LockDuration; a lock that has passed starts the count
// again; a new PIN does not reset the count, a spent one does (the spend's
// UPDATE sets both back to zero).
type pinLock struct {
	max     int
	lockFor time.Duration
}

func (s *Service) pinLock() pinLock {
	return pinLock{max: s.cfg.MaxAttempts, lockFor: s.cfg.LockDuration}
}

// lockedAt: a locked row evaluates no PIN, not even the right one. The
// spend's UPDATE holds the same condition (locked_until <= now).
func (pinLock) lockedAt(a PINAttempts, now time.Time) bool { return a.LockedUntil.After(now) }

// afterWrongPIN is the state after one more wrong PIN at now, and whether
// the guess counts at all (a locked row counts nothing).
func (l pinLock) afterWrongPIN(a PINAttempts, now time.Time) (PINAttempts, bool) {
	if l.lockedAt(a, now) {
		return a, false
	}
	next := PINAttempts{Failed: a.Failed + 1}
	if a.Failed >= l.max {
		next.Failed = 1 // the lock has passed
	}
	if next.Failed >= l.max {
		next.LockedUntil = now.Add(l.lockFor)
	}
	return next, true
}

// wrongPINRaces bounds how often one wrong PIN is decided again after
// other requests changed the row's count first. Each lost race means that
// another guess was counted, and a row takes at most MaxAttempts of them
// before it locks, so the bound is only reached if something else rewrites
// the row in a loop.
const wrongPINRaces = 100

// wrongPIN counts a wrong guess. The rule is decided here, from the row as
// read; the store writes the result only if the row still holds what was
// read (compare and set), else the guess is decided again from the row as
// it is now. So concurrent guesses on any number of instances each count
// once, and none is evaluated past the lock.
func (s *Service) wrongPIN(ctx context.Context, r Repo, wu WebUser, now time.Time) error {
	rule := s.pinLock()
	cur := attemptsOf(wu)
	for range wrongPINRaces {
		next, counted := rule.afterWrongPIN(cur, now)
		if !counted {
			return &AttemptsError{Err: ErrPINLocked, LockedUntil: cur.LockedUntil}
		}
		stored, swapped, err := r.SwapPINAttempts(ctx, wu.ID, cur, next, now)
		if err != nil {
			return err
		}
		if swapped {
			left := max(rule.max-next.Failed, 0)
			return &AttemptsError{Err: ErrPINInvalid, AttemptsLeft: left, LockedUntil: next.LockedUntil}
		}
		cur = stored
	}
	return fmt.Errorf("wrong-PIN count kept racing: %w", ErrUnavailable)
}

// credentialState refuses a used or expired credential before trying to
// spend it.
func credentialState(wu WebUser, magic bool, now time.Time) error {
	if !wu.PINUsedAt.IsZero() {
		return ErrPINUsed
	}
	exp := wu.PINExpiresAt
	if magic {
		exp = wu.MagicExpiresAt
	}
	if !exp.After(now) {
		return ErrPINExpired
	}
	return nil
}

// signedIn is the answer for a PIN spent on the hosted PIN page: the
// person and the lead that asked for the PIN; the link is left as it is.
func signedIn(wu WebUser, lead Lead) Result {
	return Result{Outcome: OutcomeSignedIn, PersonID: wu.PersonID, UserID: wu.UserID, Lead: lead}
}

// authorizeAction names an attempt in the audit trail.
func authorizeAction(req AuthorizeRequest) string {
	if req.signIn {
		return "pin_page"
	}
	return "authorize"
}

// decide picks the answer for a spent PIN from the link state. Register
// and conflict answers hand out a grant: decide returns its record, and the
// caller stores it with the answer's audit row (newGrant).
func (s *Service) decide(ctx context.Context, r Repo, wu WebUser, lead Lead, userID string) (Result, *GrantRecord, error) {
	res := Result{PersonID: wu.PersonID, Lead: lead}
	switch {
	case wu.Linked() && userID == "":
		res.Outcome, res.UserID = OutcomeMatch, wu.UserID
		return res, nil, nil
	case wu.Linked() && userID == wu.UserID:
		res.Outcome, res.UserID = OutcomeAlreadyLinked, wu.UserID
		return res, nil, nil
	case !wu.Linked() && userID == "":
		res.Outcome = OutcomeRegister
		return res, &GrantRecord{Kind: GrantRegister, WebUserID: wu.ID, LeadID: lead.ID}, nil
	}
	linked, err := s.link(ctx, r, wu, lead, userID, false, ActorSite)
	var ce *ConflictError
	if errors.As(err, &ce) {
		c := ce.Conflict
		res.Outcome, res.Conflict = OutcomeConflict, &c
		return res, &GrantRecord{Kind: GrantConflict, WebUserID: wu.ID, LeadID: lead.ID, UserID: userID}, nil
	}
	if err != nil {
		return Result{}, nil, err
	}
	linked.Lead = lead
	return linked, nil, nil
}

// newGrant stores a one-time grant with the audit row of the answer that
// hands it out, and returns its token.
func (s *Service) newGrant(ctx context.Context, r Repo, g GrantRecord, audit AuditEvent) (*Grant, error) {
	now := s.now()
	tok, hash, err := newGrantToken(s.rand, now)
	if err != nil {
		return nil, err
	}
	g.Hash = hash
	g.CreatedAt = now
	g.ExpiresAt = now.Add(s.cfg.GrantTTL)
	audit.At = now
	if err := r.CreateGrant(ctx, g, audit); err != nil {
		return nil, err
	}
	return &Grant{Token: tok, ExpiresAt: g.ExpiresAt}, nil
}

// errorCode names a refusal for the audit trail.
func errorCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrBUIDUnknown, "buid_unknown"}, {ErrPINInvalid, "pin_invalid"}, {ErrPINLocked, "pin_locked"},
		{ErrPINExpired, "pin_expired"}, {ErrPINUsed, "pin_used"}, {ErrRateLimited, "rate_limited"},
		{ErrInvalid, "invalid_request"}, {ErrGrantUnknown, "grant_unknown"}, {ErrGrantExpired, "grant_expired"},
		{ErrGrantUsed, "grant_used"}, {ErrGrantMismatch, "grant_mismatch"}, {ErrConflict, "conflict"},
		{ErrNotLinked, "not_linked"}, {ErrUnavailable, "unavailable"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}
