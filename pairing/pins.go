package pairing

import (
	"context"
	"errors"
	"time"
)

// IssueOptions changes how IssuePIN limits itself.
type IssueOptions struct {
	// Force skips the reissue interval (operator CLI).
	Force bool
}

// IssuePIN gives a lead a fresh BUID and PIN, killing the previous ones. It
// creates the lead and its person the first time. Nothing is sent: the
// caller (a bot, or the CLI) shows the result. Bots are limited to one
// issue per ReissueInterval per person.
func (s *Service) IssuePIN(ctx context.Context, key LeadKey, p Profile, opt IssueOptions) (IssuedPIN, error) {
	lead, err := s.TouchLead(ctx, key, p)
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
		URL:            s.linkURL(lead.Channel, buid),
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
	if err != nil {
		return IssuedPIN{}, &ChannelError{Err: ErrChannelFailed, Channel: lead.Channel, Cause: err}
	}
	return pin, nil
}
