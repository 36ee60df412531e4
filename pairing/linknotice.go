package pairing

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Link notices (NIST SP 800-63B-4, 4.1.2.1: tell the subscriber of every
// new authenticator binding). Whenever a chat becomes linked to a site
// user, by whatever flow, the chat gets a message naming the site, with a
// one-tap "This wasn't me: unlink" button. The message goes through the
// outbox, written in the transaction that made the link, so the link
// request never waits for a platform and a crash cannot lose the notice.
//
// The button carries a one-time token (256 random bits, stored as its
// SHA-256) that is also bound to the lead it was sent to and to the link
// it reports: pressed from another chat it is unknown, pressed after the
// link changed it unlinks nothing, pressed twice it unlinks once.

// linkNoticePrefix starts every notice token: 4 + 43 characters, inside
// Telegram's 64-byte callback_data and Messenger's postback payload.
const linkNoticePrefix = "pln_"

// LinkNoticeTTL is how long a notice's unlink button works. The person may
// read the chat days later; after this the bot's /logout still unlinks.
const LinkNoticeTTL = 30 * 24 * time.Hour

// ActorLinkNotice says a link was removed with the unlink button of a link
// notice.
const ActorLinkNotice Actor = "link_notice"

// LinkNotice is a notice's unlink token as stored.
type LinkNotice struct {
	ID        int64
	Hash      []byte
	LeadID    int64
	UserID    string
	ExpiresAt time.Time
	UsedAt    time.Time
	CreatedAt time.Time
}

// LinkNoticeRepo keeps the notices' unlink tokens.
type LinkNoticeRepo interface {
	CreateLinkNotice(ctx context.Context, n LinkNotice) error
	// LinkNoticeByHash finds a token; ErrNotFound when none.
	LinkNoticeByHash(ctx context.Context, hash []byte) (LinkNotice, error)
	// SpendLinkNotice marks the token used with a conditional update and
	// reports whether exactly one unused, unexpired row changed.
	SpendLinkNotice(ctx context.Context, id int64, now time.Time) (bool, error)
}

// LinkNoticeTexts renders a notice in a person's language: locale is the
// lead's platform language code (may be empty), site the operator's name
// for the website (may be empty). Texts are plain (no markup).
type LinkNoticeTexts interface {
	LinkNotice(locale, site string) (text, button string)
}

// ChannelOptions are the operator's per-channel settings the domain reads.
type ChannelOptions struct {
	// LinkURL replaces pairing.link_url for the chats of this channel
	// ("{buid}" is replaced by the BUID); empty: pairing.link_url.
	LinkURL string
	// NoLinkNotices switches link notices off for this channel.
	NoLinkNotices bool
}

// SetChannelOptions records the operator's settings of a channel.
func (s *Service) SetChannelOptions(name string, o ChannelOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chanOpts == nil {
		s.chanOpts = map[string]ChannelOptions{}
	}
	s.chanOpts[name] = o
}

func (s *Service) channelOptions(name string) ChannelOptions {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.chanOpts[name]
}

// EnableLinkNotices turns link notices on with these texts (per channel
// they can be switched off with ChannelOptions.NoLinkNotices).
func (s *Service) EnableLinkNotices(t LinkNoticeTexts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noticeTexts = t
}

func (s *Service) linkNoticeTexts() LinkNoticeTexts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.noticeTexts
}

// IsLinkNoticeToken tells an adapter that a button's payload is a notice's
// unlink token.
func IsLinkNoticeToken(payload string) bool { return strings.HasPrefix(payload, linkNoticePrefix) }

// queueLinkNotice writes the notice of a new link of lead (now belonging
// to personID) to userID: the unlink token and one outbox message with
// one delivery to that chat. It runs in the transaction of the link. A
// chat that blocked the bot, or a channel that carries no messages or has
// notices off, gets none.
func (s *Service) queueLinkNotice(ctx context.Context, r Repo, lead Lead, personID int64, userID string) error {
	texts := s.linkNoticeTexts()
	if texts == nil || lead.Blocked || lead.ID == 0 || s.channelOptions(lead.Channel).NoLinkNotices {
		return nil
	}
	if _, ok := s.deliverer(lead.Channel); !ok {
		return nil
	}
	token, err := randomToken(s.rand, linkNoticePrefix)
	if err != nil {
		return err
	}
	now := s.now()
	if err := r.CreateLinkNotice(ctx, LinkNotice{Hash: HashToken([]byte(token)), LeadID: lead.ID, UserID: userID,
		ExpiresAt: now.Add(LinkNoticeTTL), CreatedAt: now}); err != nil {
		return err
	}
	text, label := texts.LinkNotice(lead.Profile.Locale, s.cfg.SiteName)
	m := Message{
		UserID: userID, PersonID: personID, Text: text, Buttons: []Button{{Text: label, Data: token}}, CreatedAt: now,
		Deliveries: []Delivery{{LeadID: lead.ID, Channel: lead.Channel, ExternalID: lead.ExternalID, Status: DeliveryQueued,
			NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}},
	}
	if err := r.CreateMessage(ctx, &m); err != nil {
		return err
	}
	s.outbox.noticeQueued.Store(true)
	return nil
}

// wakeForNotices wakes the outbox workers after a transaction that may have
// queued a link notice committed (a worker woken before the commit would
// find nothing and sleep until its next poll).
func (s *Service) wakeForNotices() {
	if s.outbox.noticeQueued.Swap(false) {
		s.wakeWorkers()
	}
}

// UnlinkByNotice is the person pressing "This wasn't me: unlink" under a
// link notice in the chat key. It unlinks at once and tells the site
// (link.deleted, by link_notice), and returns the site user that lost the
// link. A token that is not one of this chat's notices is ErrTokenUnknown;
// a used one ErrTokenUsed; an old one ErrTokenExpired; a notice of a link
// that has changed since (unlinked, or linked to another user)
// ErrNotLinked, and the token stays as it is.
func (s *Service) UnlinkByNotice(ctx context.Context, key LeadKey, token string) (string, error) {
	if err := validateLeadKey(key); err != nil {
		return "", err
	}
	if !IsLinkNoticeToken(token) || len(token) > 64 {
		return "", ErrTokenUnknown
	}
	n, err := s.store.LinkNoticeByHash(ctx, HashToken([]byte(token)))
	if errors.Is(err, ErrNotFound) {
		return "", ErrTokenUnknown
	}
	if err != nil {
		return "", err
	}
	err = s.withRetry(ctx, func(r Repo) error {
		lead, err := r.LeadByKey(ctx, key)
		if errors.Is(err, ErrNotFound) || err == nil && lead.ID != n.LeadID {
			return ErrTokenUnknown
		}
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case !n.UsedAt.IsZero():
			return ErrTokenUsed
		case !n.ExpiresAt.After(now):
			return ErrTokenExpired
		}
		wu, err := r.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			return err
		}
		if wu.UserID != n.UserID {
			return ErrNotLinked
		}
		ok, err := r.SpendLinkNotice(ctx, n.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return ErrTokenUsed
		}
		return s.clearLink(ctx, r, wu, ActorLinkNotice)
	})
	if err != nil {
		s.audit(ctx, s.store, AuditEvent{Action: "link_notice_unlink", Outcome: tokenErrorCode(err), UserID: n.UserID, Detail: key.Channel})
		return "", err
	}
	return n.UserID, nil
}
