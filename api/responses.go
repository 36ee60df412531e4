package api

import (
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// The JSON bodies of the API, as openapi.yaml describes them. Times are
// RFC 3339 in UTC.

type authorizeBody struct {
	BUID   string `json:"buid"`
	PIN    string `json:"pin"`
	UserID string `json:"user_id"`
}

type linkBody struct {
	Grant   string `json:"grant"`
	UserID  string `json:"user_id"`
	Replace bool   `json:"replace"`
}

type resendBody struct {
	BUID string `json:"buid"`
}

type accountLinkingBody struct {
	AccountLinkingToken string `json:"account_linking_token"`
	RedirectURI         string `json:"redirect_uri"`
	UserID              string `json:"user_id"`
}

type facebookBody struct {
	UserID      string `json:"user_id"`
	AppScopedID string `json:"app_scoped_id"`
}

type leadJSON struct {
	Channel   string `json:"channel"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Username  string `json:"username"`
	Locale    string `json:"locale"`
}

type leadStatusJSON struct {
	leadJSON
	Blocked bool `json:"blocked"`
}

type conflictJSON struct {
	Kind         string `json:"kind"`
	UserID       string `json:"user_id"`
	LinkedUserID string `json:"linked_user_id,omitempty"`
}

// resultJSON answers authorize, POST /v1/links and /v1/links/facebook.
type resultJSON struct {
	Outcome        string        `json:"outcome"`
	UserID         string        `json:"user_id,omitempty"`
	PersonID       int64         `json:"person_id,omitempty"`
	ReplacedUserID string        `json:"replaced_user_id,omitempty"`
	Conflict       *conflictJSON `json:"conflict,omitempty"`
	Grant          string        `json:"grant,omitempty"`
	GrantExpiresAt string        `json:"grant_expires_at,omitempty"`
	Lead           leadJSON      `json:"lead"`
}

type linkJSON struct {
	UserID   string           `json:"user_id"`
	PersonID int64            `json:"person_id"`
	LinkedAt string           `json:"linked_at"`
	Leads    []leadStatusJSON `json:"leads"`
}

type unlinkJSON struct {
	Unlinked bool `json:"unlinked"`
}

type resendJSON struct {
	Channel   string `json:"channel"`
	ExpiresAt string `json:"expires_at"`
}

type redirectJSON struct {
	RedirectURI string `json:"redirect_uri"`
}

func timeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func leadOf(l pairing.Lead) leadJSON {
	return leadJSON{Channel: l.Channel, FirstName: l.Profile.FirstName, LastName: l.Profile.LastName,
		Username: l.Profile.Username, Locale: l.Profile.Locale}
}

func conflictOf(c *pairing.Conflict) *conflictJSON {
	if c == nil {
		return nil
	}
	return &conflictJSON{Kind: string(c.Kind), UserID: c.UserID, LinkedUserID: c.LinkedUserID}
}

// resultOf shapes a decided answer: the ids for a made link, the grant
// for register and conflict.
func resultOf(r pairing.Result) resultJSON {
	out := resultJSON{Outcome: string(r.Outcome), Lead: leadOf(r.Lead), Conflict: conflictOf(r.Conflict)}
	switch r.Outcome {
	case pairing.OutcomeRegister, pairing.OutcomeConflict:
	default:
		out.UserID, out.PersonID, out.ReplacedUserID = r.UserID, r.PersonID, r.ReplacedUserID
	}
	if r.Grant != nil {
		out.Grant, out.GrantExpiresAt = r.Grant.Token, timeJSON(r.Grant.ExpiresAt)
	}
	return out
}

func linkOf(l pairing.Link) linkJSON {
	out := linkJSON{UserID: l.UserID, PersonID: l.PersonID, LinkedAt: timeJSON(l.LinkedAt), Leads: []leadStatusJSON{}}
	for _, ld := range l.Leads {
		out.Leads = append(out.Leads, leadStatusJSON{leadJSON: leadOf(ld), Blocked: ld.Blocked})
	}
	return out
}
