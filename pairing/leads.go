package pairing

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// IssueOptions changes how IssuePIN limits itself.
type IssueOptions struct {
	// Force skips the reissue interval (operator CLI).
	Force bool
}

// TouchLead records that a person wrote to a channel: it creates the lead
// (and its person) the first time, refreshes the profile, and clears the
// blocked flag, since a person who writes has not blocked the bot.
func (s *Service) TouchLead(ctx context.Context, key LeadKey, p Profile) (Lead, error) {
	if err := validateLeadKey(key); err != nil {
		return Lead{}, err
	}
	return s.ensureLead(ctx, key, p)
}

func (s *Service) ensureLead(ctx context.Context, key LeadKey, p Profile) (Lead, error) {
	p = Profile{FirstName: storable(p.FirstName), LastName: storable(p.LastName), Username: storable(p.Username), Locale: storable(p.Locale)}
	now := s.now()
	lead, err := s.store.LeadByKey(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return s.store.CreateLead(ctx, key, p, now)
	}
	if err != nil {
		return Lead{}, err
	}
	if p != (Profile{}) && p != lead.Profile {
		if err := s.store.UpdateLeadProfile(ctx, lead.ID, p, now); err != nil {
			return Lead{}, err
		}
		lead.Profile = p
	}
	if lead.Blocked {
		if err := s.setBlocked(ctx, lead, false); err != nil {
			return Lead{}, err
		}
		lead.Blocked = false
	}
	return lead, nil
}

// SetBlocked records that a lead blocked (403 from the platform,
// my_chat_member "kicked") or unblocked the bot, and tells the site.
func (s *Service) SetBlocked(ctx context.Context, key LeadKey, blocked bool) error {
	lead, err := s.store.LeadByKey(ctx, key)
	if err != nil {
		return err
	}
	return s.setBlocked(ctx, lead, blocked)
}

func (s *Service) setBlocked(ctx context.Context, lead Lead, blocked bool) error {
	return s.store.Tx(ctx, func(r Repo) error {
		now := s.now()
		changed, err := r.SetLeadBlocked(ctx, lead.ID, blocked, now)
		if err != nil || !changed {
			return err
		}
		wu, err := r.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			return err
		}
		typ := EventLeadUnblocked
		if blocked {
			typ = EventLeadBlocked
		}
		return s.siteEvent(ctx, r, typ, wu.UserID, map[string]any{
			"person_id": lead.PersonID,
			"channel":   lead.Channel,
		})
	})
}

// IssuePIN gives a lead a fresh BUID and PIN, killing the previous ones. It
// creates the lead and its person the first time. Nothing is sent: the
// caller (a bot, or the CLI) shows the result. Bots are limited to one
// issue per ReissueInterval per person.
func (s *Service) IssuePIN(ctx context.Context, key LeadKey, p Profile, opt IssueOptions) (IssuedPIN, error) {
	if err := validateLeadKey(key); err != nil {
		return IssuedPIN{}, err
	}
	lead, err := s.ensureLead(ctx, key, p)
	if err != nil {
		return IssuedPIN{}, err
	}
	interval := s.cfg.ReissueInterval
	if opt.Force {
		interval = 0
	}
	var out IssuedPIN
	err = s.store.Tx(ctx, func(r Repo) error {
		wu, err := r.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			return err
		}
		out, err = s.issue(ctx, r, wu, lead, interval)
		return err
	})
	return out, err
}

// issue claims the row's issue slot and stores a new credential.
func (s *Service) issue(ctx context.Context, r Repo, wu WebUser, lead Lead, minInterval time.Duration) (IssuedPIN, error) {
	now := s.now()
	ok, err := r.ClaimIssue(ctx, wu.ID, now, minInterval)
	if err != nil {
		return IssuedPIN{}, err
	}
	if !ok {
		return IssuedPIN{}, &RetryError{Err: ErrRateLimited, RetryAfter: retryAfter(wu.PINIssuedAt.Add(minInterval), now)}
	}
	secret, err := randomBytes(s.rand, 16)
	if err != nil {
		return IssuedPIN{}, err
	}
	pin, err := randomPIN(s.rand, s.cfg.PINLength)
	if err != nil {
		return IssuedPIN{}, err
	}
	buid, err := s.buid.encode(wu.ID, secret)
	if err != nil {
		return IssuedPIN{}, err
	}
	c := Credential{
		BUIDHash:  HashToken(secret),
		PINHash:   pinHash(s.cfg.Secret, wu.ID, pin),
		IssuedAt:  now,
		ExpiresAt: now.Add(s.cfg.PINTTL),
		LeadID:    lead.ID,
	}
	if s.cfg.MagicLinkTTL > 0 {
		c.MagicExpiresAt = now.Add(s.cfg.MagicLinkTTL)
	}
	if err := r.SetCredential(ctx, wu.ID, c, now); err != nil {
		return IssuedPIN{}, err
	}
	s.audit(ctx, r, AuditEvent{Action: "pin_issue", Outcome: "issued", WebUserID: wu.ID, PersonID: wu.PersonID, UserID: wu.UserID, Detail: lead.Channel})
	return IssuedPIN{
		BUID:           buid,
		PIN:            pin,
		URL:            s.linkURL(buid),
		ExpiresAt:      c.ExpiresAt,
		MagicExpiresAt: c.MagicExpiresAt,
		Lead:           lead,
	}, nil
}

// ResendPIN issues a fresh PIN for the person behind a BUID and has the
// lead's channel send it. One resend per ResendInterval per person.
func (s *Service) ResendPIN(ctx context.Context, buid string) (IssuedPIN, error) {
	wu, _, err := s.lookupBUID(ctx, buid)
	if err != nil {
		return IssuedPIN{}, err
	}
	lead, err := s.store.LeadByID(ctx, wu.LeadID)
	if err != nil {
		return IssuedPIN{}, err
	}
	ch, ok := s.channel(lead.Channel)
	if !ok {
		return IssuedPIN{}, &ChannelError{Err: ErrChannelUnavailable, Channel: lead.Channel}
	}
	if lead.Blocked {
		return IssuedPIN{}, &ChannelError{Err: ErrChannelUnavailable, Channel: lead.Channel, Cause: errors.New("the person blocked the bot")}
	}
	var pin IssuedPIN
	err = s.store.Tx(ctx, func(r Repo) error {
		pin, err = s.issue(ctx, r, wu, lead, s.cfg.ResendInterval)
		return err
	})
	if err != nil {
		return IssuedPIN{}, err
	}
	err = ch.SendPIN(ctx, pin)
	s.obs.PlatformSend(lead.Channel, SendPIN, sendResult(err))
	if err != nil {
		return IssuedPIN{}, &ChannelError{Err: ErrChannelFailed, Channel: lead.Channel, Cause: err}
	}
	return pin, nil
}

// Status tells a bot whether a chat is linked.
func (s *Service) Status(ctx context.Context, key LeadKey) (LeadStatus, error) {
	lead, err := s.store.LeadByKey(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return LeadStatus{}, nil
	}
	if err != nil {
		return LeadStatus{}, err
	}
	wu, err := s.store.WebUserByPerson(ctx, lead.PersonID)
	if err != nil {
		return LeadStatus{}, err
	}
	return LeadStatus{Lead: lead, Linked: wu.Linked(), UserID: wu.UserID}, nil
}

// siteEvent writes a site event with the common fields.
func (s *Service) siteEvent(ctx context.Context, r Repo, typ, userID string, data map[string]any) error {
	now := s.now()
	if userID != "" {
		data["user_id"] = userID
	}
	data["type"] = typ
	data["at"] = now.Format(time.RFC3339Nano)
	payload, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return r.AddSiteEvent(ctx, SiteEvent{Type: typ, UserID: userID, Payload: payload, CreatedAt: now})
}
