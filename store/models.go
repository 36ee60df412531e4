package store

import (
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// The rows as stored. They stay in this package; callers see pairing types.
// Times are unix microseconds, 0 for "not set", so that both engines store
// and compare them the same way.

type leadRow struct {
	ID         int64  `db:"id"`
	PersonID   int64  `db:"person_id"`
	Channel    string `db:"channel"`
	ExternalID string `db:"external_id"`
	FirstName  string `db:"first_name"`
	LastName   string `db:"last_name"`
	Username   string `db:"username"`
	Locale     string `db:"locale"`
	Blocked    bool   `db:"blocked"`
	CreatedAt  int64  `db:"created_at"`
	UpdatedAt  int64  `db:"updated_at"`
}

func (r leadRow) lead() pairing.Lead {
	return pairing.Lead{
		ID: r.ID, PersonID: r.PersonID, Channel: r.Channel, ExternalID: r.ExternalID,
		Profile: pairing.Profile{FirstName: r.FirstName, LastName: r.LastName, Username: r.Username, Locale: r.Locale},
		Blocked: r.Blocked, CreatedAt: tm(r.CreatedAt), UpdatedAt: tm(r.UpdatedAt),
	}
}

type webUserRow struct {
	ID             int64   `db:"id"`
	PersonID       int64   `db:"person_id"`
	LeadID         int64   `db:"lead_id"`
	BUIDHash       []byte  `db:"buid_hash"`
	PINHash        []byte  `db:"pin_hash"`
	PINIssuedAt    int64   `db:"pin_issued_at"`
	PINExpiresAt   int64   `db:"pin_expires_at"`
	PINUsedAt      int64   `db:"pin_used_at"`
	MagicExpiresAt int64   `db:"magic_expires_at"`
	FailedAttempts int     `db:"failed_attempts"`
	LockedUntil    int64   `db:"locked_until"`
	UserID         *string `db:"user_id"`
	LinkedAt       int64   `db:"linked_at"`
	CreatedAt      int64   `db:"created_at"`
	UpdatedAt      int64   `db:"updated_at"`
}

func (r webUserRow) webUser() pairing.WebUser {
	w := pairing.WebUser{
		ID: r.ID, PersonID: r.PersonID, LeadID: r.LeadID, BUIDHash: r.BUIDHash, PINHash: r.PINHash,
		PINIssuedAt: tm(r.PINIssuedAt), PINExpiresAt: tm(r.PINExpiresAt), PINUsedAt: tm(r.PINUsedAt),
		MagicExpiresAt: tm(r.MagicExpiresAt), FailedAttempts: r.FailedAttempts, LockedUntil: tm(r.LockedUntil),
		LinkedAt: tm(r.LinkedAt), CreatedAt: tm(r.CreatedAt), UpdatedAt: tm(r.UpdatedAt),
	}
	if r.UserID != nil {
		w.UserID = *r.UserID
	}
	return w
}

type grantRow struct {
	ID        int64  `db:"id"`
	Hash      []byte `db:"hash"`
	Kind      string `db:"kind"`
	WebUserID int64  `db:"web_user_id"`
	LeadID    int64  `db:"lead_id"`
	UserID    string `db:"user_id"`
	ExpiresAt int64  `db:"expires_at"`
	UsedAt    int64  `db:"used_at"`
	CreatedAt int64  `db:"created_at"`
}

func (r grantRow) grant() pairing.GrantRecord {
	return pairing.GrantRecord{
		ID: r.ID, Hash: r.Hash, Kind: pairing.GrantKind(r.Kind), WebUserID: r.WebUserID, LeadID: r.LeadID,
		UserID: r.UserID, ExpiresAt: tm(r.ExpiresAt), UsedAt: tm(r.UsedAt), CreatedAt: tm(r.CreatedAt),
	}
}

type apiKeyRow struct {
	ID          int64  `db:"id"`
	Name        string `db:"name"`
	Prefix      string `db:"prefix"`
	Hash        []byte `db:"hash"`
	CreatedAt   int64  `db:"created_at"`
	RevokedAt   int64  `db:"revoked_at"`
	LastUsedAt  int64  `db:"last_used_at"`
	Failures    int    `db:"failures"`
	WindowStart int64  `db:"window_start"`
}

func (r apiKeyRow) key() pairing.APIKey {
	return pairing.APIKey{
		ID: r.ID, Name: r.Name, Prefix: r.Prefix, Hash: r.Hash,
		CreatedAt: tm(r.CreatedAt), RevokedAt: tm(r.RevokedAt), LastUsedAt: tm(r.LastUsedAt),
	}
}

// us turns a time into stored microseconds; the zero time is 0.
func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// tm turns stored microseconds back into a UTC time; 0 is the zero time.
func tm(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
