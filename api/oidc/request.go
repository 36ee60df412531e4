package oidc

import (
	"encoding/json"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// params are the validated parameters of an authorization request, kept
// as JSON in the request's row.
type params struct {
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Scopes        []string `json:"scopes"`
	CodeChallenge string   `json:"code_challenge"`
	Prompt        []string `json:"prompt,omitempty"`
	MaxAge        *uint    `json:"max_age,omitempty"`
	UILocales     []string `json:"ui_locales,omitempty"`
	LoginHint     string   `json:"login_hint,omitempty"`
}

// authRequest is a stored request as op sees it. After its code was
// spent it carries the access token stored with the spend.
type authRequest struct {
	rec               store.AuthRequestRecord
	p                 params
	accessToken       string
	accessTokenExpiry time.Time
}

var _ op.AuthRequest = authRequest{}

func requestOf(rec store.AuthRequestRecord) (authRequest, error) {
	var p params
	if err := json.Unmarshal(rec.Request, &p); err != nil {
		return authRequest{}, err
	}
	return authRequest{rec: rec, p: p}, nil
}

func (a authRequest) GetID() string          { return a.rec.ID }
func (a authRequest) GetACR() string         { return "" }
func (a authRequest) GetAMR() []string       { return a.rec.AMR }
func (a authRequest) GetAudience() []string  { return []string{a.rec.ClientID} }
func (a authRequest) GetAuthTime() time.Time { return a.rec.AuthTime }
func (a authRequest) GetClientID() string    { return a.rec.ClientID }
func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.p.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
}
func (a authRequest) GetNonce() string                   { return a.p.Nonce }
func (a authRequest) GetRedirectURI() string             { return a.p.RedirectURI }
func (a authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseTypeCode }
func (a authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseModeQuery }
func (a authRequest) GetScopes() []string                { return a.p.Scopes }
func (a authRequest) GetState() string                   { return a.p.State }
func (a authRequest) GetSubject() string                 { return a.rec.Subject }
func (a authRequest) Done() bool                         { return a.rec.Status == pairing.SignInConfirmed }

// promptLogin: the site asked for a new proof even with a session.
func (a authRequest) promptLogin() bool { return hasWord(a.p.Prompt, oidc.PromptLogin) }

// promptNone: the site wants an answer without any page.
func (a authRequest) promptNone() bool { return hasWord(a.p.Prompt, oidc.PromptNone) }

// sessionFresh tells whether a session authenticated at authTime satisfies
// max_age.
func (a authRequest) sessionFresh(authTime, now time.Time) bool {
	if a.p.MaxAge == nil {
		return true
	}
	return now.Sub(authTime) <= time.Duration(*a.p.MaxAge)*time.Second
}

func hasWord(list []string, w string) bool {
	for _, s := range list {
		if s == w {
			return true
		}
	}
	return false
}
