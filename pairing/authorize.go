package pairing

import (
	"context"
	"errors"
	"strconv"
	"time"
)

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
// exactly once, and decides the answer from the link state (DESIGN.md,
// "authorize: every branch"). Refusals are errors: ErrBUIDUnknown,
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
		if !s.cfg.MagicLink {
			return Result{}, invalid("pin", "is required")
		}
	} else {
		var ok bool
		if pin, ok = NormalizePIN(req.PIN, s.cfg.PINLength); !ok {
			return Result{}, invalid("pin", "must be exactly "+strconv.Itoa(s.cfg.PINLength)+" digits")
		}
	}
	// The key's failure budget is exact, whatever the concurrency. Where
	// the store serializes writers (SQLite), every answer is decided in one
	// write transaction that first checks (or takes) the key's budget, so
	// the check and the effect are atomic. Elsewhere (PostgreSQL, where
	// holding the key's row for a whole transaction would serialize all of
	// a site's requests) this attempt's failure is reserved before anything
	// is evaluated and given back when the answer is not a failure.
	b := budget{keyID: req.KeyID, inTx: s.serialWrites && req.KeyID != 0 && s.cfg.KeyFailureBudget > 0}
	if !b.inTx {
		reserved, err := s.reserveKeyFailure(ctx, req.KeyID)
		if err != nil {
			if errors.Is(err, ErrRateLimited) {
				s.audit(ctx, s.store, AuditEvent{Action: "authorize", Outcome: "rate_limited", KeyID: req.KeyID})
			}
			return Result{}, err
		}
		b.refund = reserved
	}

	res, err := s.authorize(ctx, req, pin, b)
	reserved := b.refund
	if err != nil {
		if reserved && !countsAgainstKey(err) {
			s.refundKeyFailure(ctx, req.KeyID)
		}
		s.audit(ctx, s.store, AuditEvent{Action: "authorize", KeyID: req.KeyID, WebUserID: res.webUserID,
			PersonID: res.PersonID, UserID: req.UserID, Outcome: errorCode(err)})
	}
	// Decided answers were audited, and their reservation refunded, inside
	// their transaction.
	return res.Result, err
}

type authorized struct {
	Result
	webUserID int64
}

// budget says how an authorize call settles with its key's failure
// budget (see Authorize).
type budget struct {
	keyID int64
	// inTx: the budget is checked or taken inside the transaction that
	// decides the answer.
	inTx bool
	// refund: a failure was reserved up front; a decided answer gives it
	// back in its transaction.
	refund bool
}

// charge takes one failure of the key's budget for a refusal that counts
// as guessing (inTx mode), or refuses the key when none is left.
func (s *Service) charge(ctx context.Context, r Repo, b budget, refusal error) error {
	if !b.inTx {
		return refusal
	}
	ok, err := r.ReserveKeyFailure(ctx, b.keyID, s.now(), s.cfg.KeyFailureWindow, s.cfg.KeyFailureBudget)
	if err != nil {
		return err
	}
	if !ok {
		return &RetryError{Err: ErrRateLimited, RetryAfter: s.cfg.KeyFailureWindow}
	}
	return refusal
}

// hasRoom refuses the key (inTx mode) when its budget is used up, without
// taking any of it.
func (s *Service) hasRoom(ctx context.Context, r Repo, b budget) error {
	if !b.inTx {
		return nil
	}
	n, err := r.KeyFailures(ctx, b.keyID, s.now(), s.cfg.KeyFailureWindow)
	if err != nil {
		return err
	}
	if n >= s.cfg.KeyFailureBudget {
		return &RetryError{Err: ErrRateLimited, RetryAfter: s.cfg.KeyFailureWindow}
	}
	return nil
}

func (s *Service) authorize(ctx context.Context, req AuthorizeRequest, pin string, b budget) (authorized, error) {
	rowID, secret, ok := s.buid.decode(req.BUID)
	if !ok {
		return authorized{}, s.charge(ctx, s.store, b, ErrBUIDUnknown)
	}
	buidHash := HashToken(secret)
	var pinH []byte
	if pin != "" {
		pinH = pinHash(s.cfg.Secret, rowID, pin)
	}
	now := s.now()
	// The answer is decided in one transaction that first tries to spend
	// the credential: the conditional update holds only for the right
	// BUID and PIN, unused, unexpired and unlocked, so the common case
	// costs one statement, and whatever made it fail is read afterwards
	// in the same transaction.
	var out authorized
	var refusal error
	var guard KeyGuard
	if b.inTx {
		guard = KeyGuard{KeyID: b.keyID, WindowStart: now.Add(-s.cfg.KeyFailureWindow), Budget: s.cfg.KeyFailureBudget}
	}
	err := s.withRetry(ctx, func(r Repo) error {
		out, refusal = authorized{}, nil
		cur, spent, err := r.SpendCredential(ctx, rowID, buidHash, pinH, now, guard)
		if err != nil {
			return err
		}
		if !spent {
			// The key's budget first: once it is used up, every answer is
			// rate_limited.
			if err := s.hasRoom(ctx, r, b); err != nil {
				return err
			}
			out, refusal, err = s.refuse(ctx, r, rowID, buidHash, pinH, now)
			if err != nil {
				return err
			}
			if countsAgainstKey(refusal) {
				if refusal = s.charge(ctx, r, b, refusal); !countsAgainstKey(refusal) {
					return refusal // out of budget, or a store error: nothing is counted
				}
			}
			return nil // commit the counts (wrong PIN, key budget)
		}
		out = authorized{webUserID: cur.ID, Result: Result{PersonID: cur.PersonID}}
		out.Result, err = s.decide(ctx, r, cur, req.UserID)
		if err != nil {
			return err
		}
		s.audit(ctx, r, AuditEvent{Action: "authorize", Outcome: string(out.Outcome), KeyID: req.KeyID,
			WebUserID: cur.ID, PersonID: out.PersonID, UserID: req.UserID})
		if b.refund {
			return r.RefundKeyFailure(ctx, req.KeyID, now, s.cfg.KeyFailureWindow)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, refusal
}

// refuse explains a credential that could not be spent, from the row as
// it is now, and counts a wrong PIN: an unknown or rotated BUID, a lock,
// a wrong PIN, a used or expired credential (DESIGN.md's order).
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
	if wu.LockedUntil.After(now) {
		return out, &AttemptsError{Err: ErrPINLocked, LockedUntil: wu.LockedUntil}, nil
	}
	if pinH != nil && !equalHash(pinH, wu.PINHash) {
		refusal := s.wrongPIN(ctx, r, wu.ID, now)
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

// wrongPIN counts a wrong guess atomically; only guesses counted below the
// limit are evaluated, so concurrent guessing cannot pass it.
func (s *Service) wrongPIN(ctx context.Context, r Repo, rowID int64, now time.Time) error {
	attempts, lockedUntil, counted, err := r.RecordPINFailure(ctx, rowID, now, s.cfg.MaxAttempts, s.cfg.LockDuration)
	if err != nil {
		return err
	}
	if !counted {
		return &AttemptsError{Err: ErrPINLocked, LockedUntil: lockedUntil}
	}
	left := max(s.cfg.MaxAttempts-attempts, 0)
	return &AttemptsError{Err: ErrPINInvalid, AttemptsLeft: left, LockedUntil: lockedUntil}
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

// decide picks the answer for a spent PIN from the link state.
func (s *Service) decide(ctx context.Context, r Repo, wu WebUser, userID string) (Result, error) {
	lead, err := r.LeadByID(ctx, wu.LeadID)
	if err != nil {
		return Result{}, err
	}
	res := Result{PersonID: wu.PersonID, Lead: lead}
	switch {
	case wu.Linked() && userID == "":
		res.Outcome, res.UserID = OutcomeMatch, wu.UserID
		return res, nil
	case wu.Linked() && userID == wu.UserID:
		res.Outcome, res.UserID = OutcomeAlreadyLinked, wu.UserID
		return res, nil
	case !wu.Linked() && userID == "":
		res.Outcome = OutcomeRegister
		res.Grant, err = s.newGrant(ctx, r, GrantRecord{Kind: GrantRegister, WebUserID: wu.ID, LeadID: lead.ID})
		return res, err
	}
	linked, err := s.link(ctx, r, wu, lead, userID, false, ActorSite)
	var ce *ConflictError
	if errors.As(err, &ce) {
		c := ce.Conflict
		res.Outcome, res.Conflict = OutcomeConflict, &c
		res.Grant, err = s.newGrant(ctx, r, GrantRecord{Kind: GrantConflict, WebUserID: wu.ID, LeadID: lead.ID, UserID: userID})
		return res, err
	}
	if err != nil {
		return Result{}, err
	}
	linked.Lead = lead
	return linked, nil
}

// newGrant creates a one-time grant and returns its token.
func (s *Service) newGrant(ctx context.Context, r Repo, g GrantRecord) (*Grant, error) {
	now := s.now()
	tok, hash, err := newGrantToken(s.rand, now)
	if err != nil {
		return nil, err
	}
	g.Hash = hash
	g.CreatedAt = now
	g.ExpiresAt = now.Add(s.cfg.GrantTTL)
	if err := r.CreateGrant(ctx, g); err != nil {
		return nil, err
	}
	return &Grant{Token: tok, ExpiresAt: g.ExpiresAt}, nil
}

// reserveKeyFailure takes one slot of the key's failure budget, or
// refuses the key when none is left. It reports whether a slot was taken
// (no key, or no budget configured: none).
func (s *Service) reserveKeyFailure(ctx context.Context, keyID int64) (bool, error) {
	if keyID == 0 || s.cfg.KeyFailureBudget == 0 {
		return false, nil
	}
	ok, err := s.store.ReserveKeyFailure(ctx, keyID, s.now(), s.cfg.KeyFailureWindow, s.cfg.KeyFailureBudget)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, &RetryError{Err: ErrRateLimited, RetryAfter: s.cfg.KeyFailureWindow}
	}
	return true, nil
}

func (s *Service) refundKeyFailure(ctx context.Context, keyID int64) {
	if err := s.store.RefundKeyFailure(ctx, keyID, s.now(), s.cfg.KeyFailureWindow); err != nil {
		s.log.Error("refund key failure", "key_id", keyID, "err", err)
	}
}

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
