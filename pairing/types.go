package pairing

import "time"

// LeadKey names one subscriber of one channel: the channel's configured name
// and the platform's id for the chat (Telegram chat id, Messenger PSID).
type LeadKey struct {
	Channel    string
	ExternalID string
}

// Profile is what the platform tells us about a lead.
type Profile struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
	Locale    string `json:"locale,omitempty"`
}

// Lead is one subscriber of one channel, owned by one person.
type Lead struct {
	ID         int64
	PersonID   int64
	Channel    string
	ExternalID string
	Profile    Profile
	Blocked    bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Key returns the lead's channel and external id.
func (l Lead) Key() LeadKey { return LeadKey{Channel: l.Channel, ExternalID: l.ExternalID} }

// WebUser is the pairing state of one person: the `web_users` row. It holds
// the person's current BUID and PIN (hashed), the wrong-PIN counter and lock,
// and the link to a site user.
type WebUser struct {
	ID       int64
	PersonID int64
	// LeadID is the lead that asked for the current PIN; its profile is what
	// `register` hands the site.
	LeadID       int64
	BUIDHash     []byte
	PINHash      []byte
	PINIssuedAt  time.Time
	PINExpiresAt time.Time
	PINUsedAt    time.Time // zero while unspent
	// MagicExpiresAt is when the BUID alone stops being accepted (magic-link
	// mode); zero when magic links were off at issue.
	MagicExpiresAt time.Time
	FailedAttempts int
	LockedUntil    time.Time // zero when not locked
	UserID         string    // linked site user; empty when not linked
	LinkedAt       time.Time // zero when not linked
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Linked reports whether the person is linked to a site user.
func (w WebUser) Linked() bool { return w.UserID != "" }

// Credential is a freshly issued BUID secret and PIN, in hashed form.
type Credential struct {
	BUIDHash  []byte
	PINHash   []byte
	IssuedAt  time.Time
	ExpiresAt time.Time
	// MagicExpiresAt is zero unless magic-link mode is on.
	MagicExpiresAt time.Time
	LeadID         int64
}

// IssuedPIN is what a bot shows a person: the BUID (inside URL), the PIN and
// when it stops working. It is never stored in this form.
type IssuedPIN struct {
	BUID      string
	PIN       string
	URL       string
	ExpiresAt time.Time
	// MagicExpiresAt is when the BUID alone stops working in magic-link
	// mode; zero when magic links are off.
	MagicExpiresAt time.Time
	Lead           Lead
}

// Outcome is the decided answer of authorize and of link completion.
type Outcome string

// The decided answers: the table at the top of authorize.go says which
// state gives which (docs/design.md, "authorize: every branch").
const (
	OutcomeMatch         Outcome = "match"
	OutcomeAlreadyLinked Outcome = "already_linked"
	OutcomeConflict      Outcome = "conflict"
	OutcomeLinked        Outcome = "linked"
	OutcomeRegister      Outcome = "register"
	// OutcomeSignedIn: a chat confirmed an OpenID Connect sign-in.
	OutcomeSignedIn Outcome = "signed_in"
)

// ConflictKind says which side of a wanted link is taken.
type ConflictKind string

// Conflict kinds.
const (
	// ConflictBotLinkedElsewhere: the person is linked to another site user.
	ConflictBotLinkedElsewhere ConflictKind = "bot_linked_elsewhere"
	// ConflictUserLinkedElsewhere: the site user is linked to another person
	// who has a lead on a channel this person also uses.
	ConflictUserLinkedElsewhere ConflictKind = "user_linked_elsewhere"
)

// Conflict describes why a link cannot be made without `replace`.
type Conflict struct {
	Kind ConflictKind
	// UserID is the site user the request wants to link.
	UserID string
	// LinkedUserID is the site user the person is linked to now
	// (bot_linked_elsewhere only).
	LinkedUserID string
}

// Grant is a one-time token the site spends to finish a link.
type Grant struct {
	Token     string
	ExpiresAt time.Time
}

// GrantKind says which answer of authorize a grant belongs to.
type GrantKind string

// Grant kinds.
const (
	GrantRegister GrantKind = "register"
	GrantConflict GrantKind = "conflict"
)

// GrantRecord is a grant as stored: hashed, with what it may do.
type GrantRecord struct {
	ID        int64
	Hash      []byte
	Kind      GrantKind
	WebUserID int64
	LeadID    int64
	// UserID is the site user a conflict grant may link; empty for register.
	UserID    string
	ExpiresAt time.Time
	UsedAt    time.Time
	CreatedAt time.Time
}

// AuthorizeRequest is one call of POST /v1/authorize.
type AuthorizeRequest struct {
	BUID   string
	PIN    string // empty only in magic-link mode
	UserID string // the site user logged in now, if any
	KeyID  int64  // API key making the call, for the failure budget and audit
	// signIn: the hosted PIN page spends the PIN to sign the person in;
	// the answer is the person, no link is decided (SignIns.SignInWithPIN).
	signIn bool
}

// Result is a decided pairing answer.
type Result struct {
	Outcome  Outcome
	UserID   string // the linked site user (match, already_linked, linked)
	PersonID int64
	Lead     Lead      // the lead that asked for the PIN
	Conflict *Conflict // conflict only
	Grant    *Grant    // register and conflict
	// ReplacedUserID is the site user that lost the link when `replace`
	// moved it (link completion only).
	ReplacedUserID string
}

// LinkRequest is one call of POST /v1/links: spend a grant to link.
type LinkRequest struct {
	Grant   string
	UserID  string
	Replace bool
	KeyID   int64
}

// Link is a site user's link as the site sees it.
type Link struct {
	UserID   string
	PersonID int64
	LinkedAt time.Time
	Leads    []Lead
}

// Actor says who changed a link; it is told to the site in link events.
type Actor string

// Actors.
const (
	ActorSite      Actor = "site"
	ActorBot       Actor = "bot"
	ActorMessenger Actor = "messenger_account_unlinking"
	ActorOperator  Actor = "operator"
	ActorReplace   Actor = "replace"
)

// LeadStatus is what a bot may say about a chat's link.
type LeadStatus struct {
	Lead   Lead
	Linked bool
	UserID string
}

// AuditEvent is one line of the audit trail. It never holds a secret.
type AuditEvent struct {
	At        time.Time
	Action    string // authorize, link, unlink, pin_issue, grant_spend ...
	Outcome   string // outcome or error code
	KeyID     int64
	WebUserID int64
	PersonID  int64
	UserID    string
	Detail    string
}

// SiteEvent is an event for the site (link.created ...), written in the same
// transaction as the change it reports.
type SiteEvent struct {
	ID        int64
	Type      string
	UserID    string
	Payload   []byte // JSON object
	CreatedAt time.Time
}

// Site event types.
const (
	EventLinkCreated      = "link.created"
	EventLinkDeleted      = "link.deleted"
	EventLeadBlocked      = "lead.blocked"
	EventLeadUnblocked    = "lead.unblocked"
	EventMessageDelivered = "message.delivered"
	EventMessageFailed    = "message.failed"
)

// APIKey is a key a site uses to call the REST API. The secret is only ever
// shown once, at creation; the store keeps its SHA-256.
type APIKey struct {
	ID         int64
	Name       string
	Prefix     string // first characters, to tell keys apart in lists
	Hash       []byte
	CreatedAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
}
