package pairing

import (
	"context"
	"errors"
	"strings"
	"time"
)

// link links the person of row wu (reached through lead) to site user
// userID, under the one set of rules every flow shares:
//
//   - already linked to userID: already_linked, nothing changes;
//   - linked to another user: conflict bot_linked_elsewhere, unless replace;
//   - userID linked to another person who uses one of this person's
//     channels: conflict user_linked_elsewhere, unless replace;
//   - userID linked to another person on other channels only: the same human
//     is adding a messenger, so this person's leads join that person;
//   - otherwise: linked.
//
// It runs inside the caller's transaction and writes the site events.
func (s *Service) link(ctx context.Context, r Repo, wu WebUser, lead Lead, userID string, replace bool, actor Actor) (Result, error) {
	now := s.now()
	res := Result{PersonID: wu.PersonID, UserID: userID, Lead: lead}
	if wu.UserID == userID {
		res.Outcome = OutcomeAlreadyLinked
		return res, nil
	}
	if wu.Linked() {
		if !replace {
			return Result{}, &ConflictError{Conflict{Kind: ConflictBotLinkedElsewhere, UserID: userID, LinkedUserID: wu.UserID}}
		}
		if err := s.clearLink(ctx, r, wu, ActorReplace); err != nil {
			return Result{}, err
		}
		res.ReplacedUserID = wu.UserID
		wu.UserID = ""
	}

	other, err := r.WebUserByUserID(ctx, userID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Result{}, err
	case other.PersonID != wu.PersonID:
		shared, err := s.shareChannel(ctx, r, wu.PersonID, other.PersonID)
		if err != nil {
			return Result{}, err
		}
		if !shared {
			if err := r.MergePerson(ctx, wu.PersonID, other.PersonID, now); err != nil {
				return Result{}, err
			}
			res.Outcome, res.PersonID = OutcomeLinked, other.PersonID
			if err := s.queueLinkNotice(ctx, r, lead, other.PersonID, userID); err != nil {
				return Result{}, err
			}
			return res, s.linkEvent(ctx, r, EventLinkCreated, userID, other.PersonID, lead.Channel, actor)
		}
		if !replace {
			return Result{}, &ConflictError{Conflict{Kind: ConflictUserLinkedElsewhere, UserID: userID}}
		}
		if err := s.clearLink(ctx, r, other, ActorReplace); err != nil {
			return Result{}, err
		}
	}

	if err := r.SetLink(ctx, wu.ID, userID, now); err != nil {
		return Result{}, err
	}
	res.Outcome = OutcomeLinked
	if err := s.queueLinkNotice(ctx, r, lead, wu.PersonID, userID); err != nil {
		return Result{}, err
	}
	return res, s.linkEvent(ctx, r, EventLinkCreated, userID, wu.PersonID, lead.Channel, actor)
}

// shareChannel tells whether two persons have leads on a common channel.
func (s *Service) shareChannel(ctx context.Context, r Repo, a, b int64) (bool, error) {
	la, err := r.LeadsOfPerson(ctx, a)
	if err != nil {
		return false, err
	}
	lb, err := r.LeadsOfPerson(ctx, b)
	if err != nil {
		return false, err
	}
	for _, x := range la {
		for _, y := range lb {
			if x.Channel == y.Channel {
				return true, nil
			}
		}
	}
	return false, nil
}

func (s *Service) clearLink(ctx context.Context, r Repo, wu WebUser, actor Actor) error {
	if err := r.ClearLink(ctx, wu.ID, wu.UserID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, r, AuditEvent{Action: "unlink", Outcome: string(actor), WebUserID: wu.ID, PersonID: wu.PersonID, UserID: wu.UserID})
	return s.linkEvent(ctx, r, EventLinkDeleted, wu.UserID, wu.PersonID, "", actor)
}

func (s *Service) linkEvent(ctx context.Context, r Repo, typ, userID string, personID int64, channel string, actor Actor) error {
	data := map[string]any{"person_id": personID, "by": string(actor)}
	if channel != "" {
		data["channel"] = channel
	}
	if typ == EventLinkCreated {
		s.audit(ctx, r, AuditEvent{Action: "link", Outcome: string(actor), PersonID: personID, UserID: userID, Detail: channel})
	}
	return s.siteEvent(ctx, r, typ, userID, data)
}

// CompleteLink is POST /v1/links: it spends a register or conflict grant
// and links the grant's person to the site user. A conflict without
// replace leaves the grant unspent, so the site can ask the person and try
// again with replace.
func (s *Service) CompleteLink(ctx context.Context, req LinkRequest) (Result, error) {
	if err := ValidateUserID("user_id", req.UserID); err != nil {
		return Result{}, err
	}
	if !strings.HasPrefix(req.Grant, grantPrefix) || len(req.Grant) > 128 {
		return Result{}, ErrGrantUnknown
	}
	g, err := s.store.GrantByHash(ctx, grantHash(req.Grant))
	if errors.Is(err, ErrNotFound) {
		s.addKeyFailure(ctx, req.KeyID)
		return Result{}, ErrGrantUnknown
	}
	if err != nil {
		return Result{}, err
	}
	now := s.now()
	if err := grantState(g, now); err != nil {
		return Result{}, err
	}
	if g.Kind == GrantConflict && g.UserID != req.UserID {
		return Result{}, ErrGrantMismatch
	}
	var res Result
	err = s.withRetry(ctx, func(r Repo) error {
		ok, err := r.SpendGrant(ctx, g.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			cur, err := r.GrantByHash(ctx, g.Hash)
			if err != nil {
				return err
			}
			if err := grantState(cur, now); err != nil {
				return err
			}
			return ErrGrantUsed
		}
		wu, err := r.WebUserByID(ctx, g.WebUserID)
		if errors.Is(err, ErrNotFound) {
			// The person was merged into another since the grant was made.
			return ErrGrantUnknown
		}
		if err != nil {
			return err
		}
		lead, err := r.LeadByID(ctx, g.LeadID)
		if err != nil {
			return err
		}
		res, err = s.link(ctx, r, wu, lead, req.UserID, req.Replace, ActorSite)
		if err != nil {
			return err
		}
		s.audit(ctx, r, AuditEvent{Action: "grant_spend", Outcome: string(res.Outcome), KeyID: req.KeyID, WebUserID: wu.ID, PersonID: res.PersonID, UserID: req.UserID})
		return nil
	})
	if err != nil {
		s.audit(ctx, s.store, AuditEvent{Action: "grant_spend", Outcome: errorCode(err), KeyID: req.KeyID, UserID: req.UserID})
	}
	return res, err
}

// grantState refuses a used or expired grant.
func grantState(g GrantRecord, now time.Time) error {
	if !g.UsedAt.IsZero() {
		return ErrGrantUsed
	}
	if !g.ExpiresAt.After(now) {
		return ErrGrantExpired
	}
	return nil
}

// GetLink is GET /v1/links/{user_id}.
func (s *Service) GetLink(ctx context.Context, userID string) (Link, error) {
	if err := ValidateUserID("user_id", userID); err != nil {
		return Link{}, err
	}
	wu, err := s.store.WebUserByUserID(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return Link{}, ErrNotLinked
	}
	if err != nil {
		return Link{}, err
	}
	return s.linkOf(ctx, s.store, wu)
}

func (s *Service) linkOf(ctx context.Context, r Repo, wu WebUser) (Link, error) {
	leads, err := r.LeadsOfPerson(ctx, wu.PersonID)
	if err != nil {
		return Link{}, err
	}
	return Link{UserID: wu.UserID, PersonID: wu.PersonID, LinkedAt: wu.LinkedAt, Leads: leads}, nil
}

// ListLinks lists links in id order, for the operator CLI. Pass the last
// returned cursor to get the next page; 0 starts at the beginning.
func (s *Service) ListLinks(ctx context.Context, after int64, limit int) (links []Link, cursor int64, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.store.ListLinks(ctx, after, limit)
	if err != nil {
		return nil, 0, err
	}
	for _, wu := range rows {
		l, err := s.linkOf(ctx, s.store, wu)
		if err != nil {
			return nil, 0, err
		}
		links = append(links, l)
		cursor = wu.ID
	}
	return links, cursor, nil
}

// UnlinkUser is DELETE /v1/links/{user_id} (and the CLI's unlink). It is
// idempotent: it reports whether a link was removed.
func (s *Service) UnlinkUser(ctx context.Context, userID string, actor Actor) (bool, error) {
	if err := ValidateUserID("user_id", userID); err != nil {
		return false, err
	}
	removed := false
	err := s.withRetry(ctx, func(r Repo) error {
		removed = false
		wu, err := r.WebUserByUserID(ctx, userID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		removed = true
		return s.clearLink(ctx, r, wu, actor)
	})
	return removed, err
}

// UnlinkLead unlinks the person behind a chat (bot /logout, Messenger
// account unlinking) and returns the site user it was linked to.
func (s *Service) UnlinkLead(ctx context.Context, key LeadKey, actor Actor) (string, error) {
	var userID string
	err := s.withRetry(ctx, func(r Repo) error {
		lead, err := r.LeadByKey(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return ErrNotLinked
		}
		if err != nil {
			return err
		}
		wu, err := r.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			return err
		}
		if !wu.Linked() {
			return ErrNotLinked
		}
		userID = wu.UserID
		return s.clearLink(ctx, r, wu, actor)
	})
	return userID, err
}

// LinkLead links the person behind a chat to a site user without a PIN,
// under the same rules as authorize (Messenger Account Linking, Facebook
// Login ID matching, deep links). A conflict is an error wrapping
// *ConflictError and changes nothing.
func (s *Service) LinkLead(ctx context.Context, key LeadKey, userID string) (Result, error) {
	if err := validateLeadKey(key); err != nil {
		return Result{}, err
	}
	if err := ValidateUserID("user_id", userID); err != nil {
		return Result{}, err
	}
	var res Result
	err := s.withRetry(ctx, func(r Repo) error {
		lead, err := r.LeadByKey(ctx, key)
		if err != nil {
			return err
		}
		wu, err := r.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			return err
		}
		res, err = s.link(ctx, r, wu, lead, userID, false, ActorBot)
		return err
	})
	return res, err
}

// JoinLeads records that two leads are the same human (Messenger ID
// matching across a business's Pages): the lead's person joins the person
// owning `existing`. If only the lead's person is linked, the other joins
// it instead. Two persons linked to different site users, or sharing a
// channel, stay apart (an error wrapping *ConflictError).
func (s *Service) JoinLeads(ctx context.Context, key, existing LeadKey) error {
	return s.store.Tx(ctx, func(r Repo) error {
		a, err := r.LeadByKey(ctx, key)
		if err != nil {
			return err
		}
		b, err := r.LeadByKey(ctx, existing)
		if err != nil {
			return err
		}
		if a.PersonID == b.PersonID {
			return nil
		}
		wa, err := r.WebUserByPerson(ctx, a.PersonID)
		if err != nil {
			return err
		}
		wb, err := r.WebUserByPerson(ctx, b.PersonID)
		if err != nil {
			return err
		}
		if wa.Linked() && wb.Linked() {
			return &ConflictError{Conflict{Kind: ConflictUserLinkedElsewhere, UserID: wb.UserID, LinkedUserID: wa.UserID}}
		}
		shared, err := s.shareChannel(ctx, r, a.PersonID, b.PersonID)
		if err != nil {
			return err
		}
		if shared {
			return &ConflictError{Conflict{Kind: ConflictUserLinkedElsewhere, UserID: wb.UserID}}
		}
		from, to := a.PersonID, b.PersonID
		if wa.Linked() {
			from, to = to, from
		}
		return r.MergePerson(ctx, from, to, s.now())
	})
}
