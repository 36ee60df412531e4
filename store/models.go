package store

import (
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// The rows as stored. They stay in this package; callers see pairing types.
// Times are unix microseconds, 0 for "not set", so that both engines store
// and compare them the same way.

type personRow struct {
	ID        int64 `gorm:"column:id;primaryKey"`
	CreatedAt int64 `gorm:"column:created_at;autoCreateTime:false"`
}

func (personRow) TableName() string { return "persons" }

type leadRow struct {
	ID         int64  `gorm:"column:id;primaryKey"`
	PersonID   int64  `gorm:"column:person_id"`
	Channel    string `gorm:"column:channel"`
	ExternalID string `gorm:"column:external_id"`
	FirstName  string `gorm:"column:first_name"`
	LastName   string `gorm:"column:last_name"`
	Username   string `gorm:"column:username"`
	Locale     string `gorm:"column:locale"`
	Blocked    bool   `gorm:"column:blocked"`
	CreatedAt  int64  `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt  int64  `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (leadRow) TableName() string { return "leads" }

func (r leadRow) lead() pairing.Lead {
	return pairing.Lead{
		ID: r.ID, PersonID: r.PersonID, Channel: r.Channel, ExternalID: r.ExternalID,
		Profile: pairing.Profile{FirstName: r.FirstName, LastName: r.LastName, Username: r.Username, Locale: r.Locale},
		Blocked: r.Blocked, CreatedAt: tm(r.CreatedAt), UpdatedAt: tm(r.UpdatedAt),
	}
}

type webUserRow struct {
	ID             int64   `gorm:"column:id;primaryKey"`
	PersonID       int64   `gorm:"column:person_id"`
	LeadID         int64   `gorm:"column:lead_id"`
	BUIDHash       []byte  `gorm:"column:buid_hash"`
	PINHash        []byte  `gorm:"column:pin_hash"`
	PINIssuedAt    int64   `gorm:"column:pin_issued_at"`
	PINExpiresAt   int64   `gorm:"column:pin_expires_at"`
	PINUsedAt      int64   `gorm:"column:pin_used_at"`
	MagicExpiresAt int64   `gorm:"column:magic_expires_at"`
	FailedAttempts int     `gorm:"column:failed_attempts"`
	LockedUntil    int64   `gorm:"column:locked_until"`
	UserID         *string `gorm:"column:user_id"`
	LinkedAt       int64   `gorm:"column:linked_at"`
	CreatedAt      int64   `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt      int64   `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (webUserRow) TableName() string { return "web_users" }

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
	ID        int64  `gorm:"column:id;primaryKey"`
	Hash      []byte `gorm:"column:hash"`
	Kind      string `gorm:"column:kind"`
	WebUserID int64  `gorm:"column:web_user_id"`
	LeadID    int64  `gorm:"column:lead_id"`
	UserID    string `gorm:"column:user_id"`
	ExpiresAt int64  `gorm:"column:expires_at"`
	UsedAt    int64  `gorm:"column:used_at"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (grantRow) TableName() string { return "grants" }

func (r grantRow) grant() pairing.GrantRecord {
	return pairing.GrantRecord{
		ID: r.ID, Hash: r.Hash, Kind: pairing.GrantKind(r.Kind), WebUserID: r.WebUserID, LeadID: r.LeadID,
		UserID: r.UserID, ExpiresAt: tm(r.ExpiresAt), UsedAt: tm(r.UsedAt), CreatedAt: tm(r.CreatedAt),
	}
}

type apiKeyRow struct {
	ID          int64  `gorm:"column:id;primaryKey"`
	Name        string `gorm:"column:name"`
	Prefix      string `gorm:"column:prefix"`
	Hash        []byte `gorm:"column:hash"`
	CreatedAt   int64  `gorm:"column:created_at;autoCreateTime:false"`
	RevokedAt   int64  `gorm:"column:revoked_at"`
	LastUsedAt  int64  `gorm:"column:last_used_at"`
	Failures    int    `gorm:"column:failures"`
	WindowStart int64  `gorm:"column:window_start"`
}

func (apiKeyRow) TableName() string { return "api_keys" }

func (r apiKeyRow) key() pairing.APIKey {
	return pairing.APIKey{
		ID: r.ID, Name: r.Name, Prefix: r.Prefix, Hash: r.Hash,
		CreatedAt: tm(r.CreatedAt), RevokedAt: tm(r.RevokedAt), LastUsedAt: tm(r.LastUsedAt),
	}
}

type auditRow struct {
	ID        int64  `gorm:"column:id;primaryKey"`
	At        int64  `gorm:"column:at"`
	Action    string `gorm:"column:action"`
	Outcome   string `gorm:"column:outcome"`
	KeyID     int64  `gorm:"column:key_id"`
	WebUserID int64  `gorm:"column:web_user_id"`
	PersonID  int64  `gorm:"column:person_id"`
	UserID    string `gorm:"column:user_id"`
	Detail    string `gorm:"column:detail"`
}

func (auditRow) TableName() string { return "audit_events" }

type siteEventRow struct {
	ID        int64  `gorm:"column:id;primaryKey"`
	Type      string `gorm:"column:type"`
	UserID    string `gorm:"column:user_id"`
	Payload   string `gorm:"column:payload"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (siteEventRow) TableName() string { return "site_events" }

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
