package oidc

import (
	"context"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/text/language"

	"github.com/pairingd/pairingd/pairing"
)

// Claims beyond the standard ones. messengers lists the person's chats as
// {name, type}; site_user_id is the linked site user (present: the site
// logs that user in, "match"; absent: the site registers, "register").
const (
	ClaimMessengers = "messengers"
	ClaimSiteUserID = "site_user_id"
)

// Messenger is one entry of the messengers claim.
type Messenger struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// claimer reads a person's claims by subject.
type claimer struct {
	st    Store
	types func(channel string) string
}

// person is what the claims are made of.
type person struct {
	leads  []pairing.Lead
	userID string
}

// person reads the claims of subject. known is the person the sign-in
// authenticated (0: unknown), which saves the subject's lookup; a person
// merged into another since has no leads left, and the subject (which the
// surviving person keeps) is looked up then.
func (c *claimer) person(ctx context.Context, subject string, known int64) (person, error) {
	if known != 0 {
		leads, err := c.st.LeadsOfPerson(ctx, known)
		if err != nil {
			return person{}, err
		}
		if len(leads) > 0 {
			return c.withUser(ctx, known, leads)
		}
	}
	id, _, err := c.st.PersonBySubject(ctx, subject)
	if err != nil {
		return person{}, err
	}
	leads, err := c.st.LeadsOfPerson(ctx, id)
	if err != nil {
		return person{}, err
	}
	return c.withUser(ctx, id, leads)
}

func (c *claimer) withUser(ctx context.Context, id int64, leads []pairing.Lead) (person, error) {
	wu, err := c.st.WebUserByPerson(ctx, id)
	if err != nil && !errors.Is(err, pairing.ErrNotFound) {
		return person{}, err
	}
	return person{leads: leads, userID: wu.UserID}, nil
}

// fill sets the profile claims (with the profile scope) from the person's
// most recently active lead; withPrivate adds messengers and site_user_id
// (userinfo, where no private-claims hook exists).
func (c *claimer) fill(ctx context.Context, u *oidc.UserInfo, subject string, known int64, scopes []string, withPrivate bool) error {
	p, err := c.person(ctx, subject, known)
	if err != nil {
		return err
	}
	u.Subject = subject
	if hasWord(scopes, oidc.ScopeProfile) && len(p.leads) > 0 {
		prof := newest(p.leads).Profile
		u.GivenName, u.FamilyName = prof.FirstName, prof.LastName
		u.Name = strings.TrimSpace(prof.FirstName + " " + prof.LastName)
		u.PreferredUsername = prof.Username
		if tag, err := language.Parse(strings.ReplaceAll(prof.Locale, "_", "-")); prof.Locale != "" && err == nil {
			u.Locale = oidc.NewLocale(tag)
		}
	}
	if withPrivate {
		for k, v := range c.privateOf(p) {
			u.AppendClaims(k, v)
		}
	}
	return nil
}

func (c *claimer) private(ctx context.Context, subject string) (map[string]any, error) {
	p, err := c.person(ctx, subject, 0)
	if err != nil {
		return nil, err
	}
	return c.privateOf(p), nil
}

func (c *claimer) privateOf(p person) map[string]any {
	ms := make([]Messenger, 0, len(p.leads))
	for _, l := range p.leads {
		ms = append(ms, Messenger{Name: l.Channel, Type: c.types(l.Channel)})
	}
	out := map[string]any{ClaimMessengers: ms}
	if p.userID != "" {
		out[ClaimSiteUserID] = p.userID
	}
	return out
}

// newest is the lead whose profile was refreshed last.
func newest(leads []pairing.Lead) pairing.Lead {
	best := leads[0]
	for _, l := range leads[1:] {
		if l.UpdatedAt.After(best.UpdatedAt) {
			best = l
		}
	}
	return best
}
