package pairing

import (
	"context"
	"errors"
	"time"
)

// The register case of a sign-in: the ID token has no site_user_id, the
// site creates its account and links it by naming the person's subject
// (POST /v1/links/oidc). Only a person who signed in within
// SubjectLinkWindow may be linked so, and under the link rules of
// authorize: a taken side is a conflict, answered as authorize does.

// SubjectLinkWindow is how long after a sign-in its subject may be
// linked: 10 minutes, time for a site to create the account the sign-in
// asked for, and short enough that an old sign-in cannot be linked later.
const SubjectLinkWindow = 10 * time.Minute

// ActorOIDC says a link was made by a site naming a signed-in subject.
const ActorOIDC Actor = "oidc"

// SubjectLinkRequest is one call of POST /v1/links/oidc.
type SubjectLinkRequest struct {
	Subject string
	UserID  string
	Replace bool
	KeyID   int64
}

// LinkSubject links the person of a recently signed-in subject to a site
// user. An unknown subject is ErrTokenUnknown; one whose sign-in is older
// than the window is ErrTokenExpired.
func (si *SignIns) LinkSubject(ctx context.Context, req SubjectLinkRequest, window time.Duration) (Result, error) {
	if err := ValidateUserID("user_id", req.UserID); err != nil {
		return Result{}, err
	}
	if req.Subject == "" || len(req.Subject) > 128 {
		return Result{}, ErrTokenUnknown
	}
	if window <= 0 {
		window = SubjectLinkWindow
	}
	s := si.svc
	personID, signedIn, err := si.store.PersonBySubject(ctx, req.Subject)
	if errors.Is(err, ErrNotFound) {
		return Result{}, ErrTokenUnknown
	}
	if err != nil {
		return Result{}, err
	}
	if signedIn.IsZero() || s.now().Sub(signedIn) > window {
		return Result{}, ErrTokenExpired
	}
	var res Result
	err = s.withRetry(ctx, func(r Repo) error {
		wu, err := r.WebUserByPerson(ctx, personID)
		if err != nil {
			return err
		}
		leads, err := r.LeadsOfPerson(ctx, personID)
		if err != nil {
			return err
		}
		if len(leads) == 0 {
			return ErrNotFound
		}
		res, err = s.link(ctx, r, wu, leads[0], req.UserID, req.Replace, ActorOIDC)
		if err != nil {
			return err
		}
		s.audit(ctx, r, AuditEvent{Action: "oidc_link", Outcome: string(res.Outcome), KeyID: req.KeyID, WebUserID: wu.ID, PersonID: personID, UserID: req.UserID})
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Result{}, ErrTokenUnknown
	}
	return res, err
}
