package pairing

import (
	"context"
	"errors"
)

// TouchLead records that a person wrote to a channel: it creates the lead
// (and its person) the first time, refreshes the profile, and clears the
// blocked flag, since a person who writes has not blocked the bot.
func (s *Service) TouchLead(ctx context.Context, key LeadKey, p Profile) (Lead, error) {
	if err := validateLeadKey(key); err != nil {
		return Lead{}, err
	}
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
