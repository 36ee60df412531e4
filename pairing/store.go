package pairing

import (
	"context"
	"time"
)

// The storage the service needs, split by what each flow touches. A Store
// implementation returns ErrNotFound for a missing row, ErrRaced when a
// concurrent write won (for instance a link that would give one site user
// to two persons, refused by a unique index), and an error wrapping
// ErrUnavailable when the database cannot be reached. All times are UTC.

// LeadRepo keeps persons and their leads.
type LeadRepo interface {
	// LeadByKey finds a lead by channel and external id.
	LeadByKey(ctx context.Context, key LeadKey) (Lead, error)
	// LeadByID finds a lead by id.
	LeadByID(ctx context.Context, id int64) (Lead, error)
	// CreateLead creates a new person, its web_users row and the lead, and
	// returns the lead. If the (channel, external id) exists already it
	// returns the existing lead unchanged.
	CreateLead(ctx context.Context, key LeadKey, p Profile, now time.Time) (Lead, error)
	// UpdateLeadProfile stores a fresh profile.
	UpdateLeadProfile(ctx context.Context, leadID int64, p Profile, now time.Time) error
	// SetLeadBlocked sets the blocked flag and reports whether it changed.
	SetLeadBlocked(ctx context.Context, leadID int64, blocked bool, now time.Time) (bool, error)
	// LeadsOfPerson lists a person's leads, oldest first.
	LeadsOfPerson(ctx context.Context, personID int64) ([]Lead, error)
	// MergePerson moves every lead of person `from` to person `to` and
	// deletes `from` and its web_users row.
	MergePerson(ctx context.Context, from, to int64, now time.Time) error
}

// WebUserRepo keeps the web_users rows: BUID, PIN, attempts and link.
type WebUserRepo interface {
	WebUserByID(ctx context.Context, id int64) (WebUser, error)
	WebUserByPerson(ctx context.Context, personID int64) (WebUser, error)
	// WebUserByUserID finds the row linked to a site user.
	WebUserByUserID(ctx context.Context, userID string) (WebUser, error)
	// LinkOfUser finds the row linked to a site user and its person's
	// leads, oldest first, with one query (GET /v1/links/{user_id} on every
	// request). It fills only what a link shows: the row's ID, UserID,
	// PersonID and LinkedAt, and each lead's ID, PersonID, Channel,
	// ExternalID, Profile and Blocked. ErrNotFound when no row is linked to userID.
	LinkOfUser(ctx context.Context, userID string) (WebUser, []Lead, error)
	// SetCredential stores a new BUID hash and PIN hash (rotating the old
	// ones) and clears the used mark. It leaves the wrong-PIN counter and
	// the lock alone.
	SetCredential(ctx context.Context, webUserID int64, c Credential, now time.Time) error
	// ClaimIssue atomically moves pin_issued_at to now if it is older than
	// now-minInterval, and reports whether it did. It is the per-row
	// reissue and resend limit.
	ClaimIssue(ctx context.Context, webUserID int64, now time.Time, minInterval time.Duration) (bool, error)
	// SwapPINAttempts is the compare-and-set of the wrong-PIN state (the
	// rule is pinLock's): it writes next only if the row still holds old,
	// with an UPDATE that changes exactly one row or none, and reports
	// whether it did. When it did not, it returns the state the row holds
	// now, read after the UPDATE. ErrNotFound when the row is gone.
	SwapPINAttempts(ctx context.Context, webUserID int64, old, next PINAttempts, now time.Time) (stored PINAttempts, swapped bool, err error)
	// SpendCredential marks the current credential used, with a conditional
	// update that changes exactly one row only when the stored BUID hash is
	// buidHash, the credential is unused and the row is not locked at `now`
	// (locked_until <= now, as pinLock.lockedAt), and either pinHash equals
	// the stored PIN hash and pin_expires_at > now, or pinHash is nil (magic
	// link) and magic_expires_at > now. It resets the wrong-PIN counter and
	// the lock. It reports whether it changed the row.
	// The row as it is after the update comes back with it (RETURNING).
	// With a guard, the update also holds only while the guard's key has
	// failures left in its window (the budget check and the spend are one
	// statement); the key's row is read, never written or locked.
	// The lead the row's PIN was issued to comes with it (on PostgreSQL in
	// the same statement: one round trip fewer on every authorize).
	SpendCredential(ctx context.Context, webUserID int64, buidHash, pinHash []byte, now time.Time, guard KeyGuard) (Spent, bool, error)
	// SetLink links the row to a site user. It changes the row only while
	// the row has no link (conditional UPDATE ... WHERE user_id IS NULL), and
	// returns ErrRaced if the row was linked meanwhile or another row
	// holds the user (unique index), so the service decides again.
	SetLink(ctx context.Context, webUserID int64, userID string, now time.Time) error
	// ClearLink removes the row's link to userID with a conditional UPDATE
	// (... WHERE user_id = userID). It returns ErrRaced when the row no
	// longer holds that link (a concurrent unlink or relink won), so the
	// service decides again, and ErrNotFound when the row is gone.
	ClearLink(ctx context.Context, webUserID int64, userID string, now time.Time) error
	// ListLinks lists linked rows ordered by id, after the given id.
	ListLinks(ctx context.Context, afterID int64, limit int) ([]WebUser, error)
}

// GrantRepo keeps one-time grants.
type GrantRepo interface {
	// CreateGrant stores a grant together with the audit row of the answer
	// that hands it out: on PostgreSQL in one statement, a round trip fewer
	// on every register and conflict answer.
	CreateGrant(ctx context.Context, g GrantRecord, audit AuditEvent) error
	GrantByHash(ctx context.Context, hash []byte) (GrantRecord, error)
	// SpendGrant marks the grant used with a conditional update; it reports
	// whether exactly one unused, unexpired row changed.
	SpendGrant(ctx context.Context, id int64, now time.Time) (bool, error)
}

// KeyRepo keeps API keys and each key's failure budget.
type KeyRepo interface {
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey revokes by id or name; ErrNotFound when no active key
	// matches.
	RevokeAPIKey(ctx context.Context, idOrName string, now time.Time) error
	// KeyFailures returns the failures counted in the key's current window
	// (0 when the window started before now-window).
	KeyFailures(ctx context.Context, keyID int64, now time.Time, window time.Duration) (int, error)
	// AddKeyFailure counts one failure in the key's window atomically,
	// starting a new window when the current one is older than `window`, and
	// returns the new count.
	AddKeyFailure(ctx context.Context, keyID int64, now time.Time, window time.Duration) (int, error)
	// ChargeKeyFailure counts one failure with a conditional update that
	// changes the key's row only while its current window holds fewer than
	// budget failures (a window older than `window` starts again at 1), and
	// reports whether it counted. The condition is decided on the newest
	// committed row, so concurrent charges across instances never count
	// more than budget. It is the only write to the key's row on the
	// authorize path, made only by refusals (keybudget.go).
	ChargeKeyFailure(ctx context.Context, keyID int64, now time.Time, window time.Duration, budget int) (bool, error)
}

// EventRepo keeps the audit trail and the site events.
type EventRepo interface {
	AddAudit(ctx context.Context, e AuditEvent) error
	AddSiteEvent(ctx context.Context, e SiteEvent) error
}

// Spent is a web_users row as a successful SpendCredential left it, with
// the lead its credential was issued to.
type Spent struct {
	WebUser
	Lead Lead
}

// Repo is every storage operation. The same operations run inside a
// transaction (Store.Tx) or on their own.
// KeyGuard, given to SpendCredential, refuses the spend while API key
// KeyID has used Budget failures in the window that started after
// WindowStart. The zero KeyGuard guards nothing.
type KeyGuard struct {
	KeyID       int64
	WindowStart time.Time
	Budget      int
}

type Repo interface {
	LeadRepo
	WebUserRepo
	GrantRepo
	KeyRepo
	EventRepo
	LinkTokenRepo
	LinkNoticeRepo
	OutboxRepo
}

// Store is the service's storage.
type Store interface {
	Repo
	// EventLog lists site events for polling (GET /v1/events).
	EventLog
	// Tx runs fn in one transaction: all of fn's writes commit together or
	// not at all. On SQLite writers are serialized; on PostgreSQL rows are
	// locked by the conditional updates and unique indexes do the rest.
	Tx(ctx context.Context, fn func(Repo) error) error
	// Ping tells whether the database answers.
	Ping(ctx context.Context) error
}
