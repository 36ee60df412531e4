package pairing

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"time"
)

// Sign in with your messenger (flow 7). A sign-in request is the OpenID
// Connect authorization request a site started; its hosted page offers one
// deep link per channel, each carrying a one-time sign-in token. The bot
// shows the token's question through the Confirmations calls (with the
// site's name and the request's match code, which the page shows too); the
// person's Confirm authenticates the request for the lead's person, Cancel
// declines it. The protocol itself (codes, tokens, keys) lives outside the
// domain; this file only decides who signed in and how.

// signInTokenPrefix starts every sign-in token. 256 random bits in
// base64url: 47 characters of A-Z a-z 0-9 _ -, as a deep-link token.
const signInTokenPrefix = "psi_"

// DefaultSignInTokenTTL is how long a sign-in token works when the config
// says nothing; never more than MaxSignInTokenTTL.
const (
	DefaultSignInTokenTTL = 5 * time.Minute
	MaxSignInTokenTTL     = 10 * time.Minute
)

// matchCodeAlphabet has no letters or digits that read alike (0/O, 1/I/L).
const matchCodeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// matchCodeLen: 4 characters of 31 give about 20 bits; a phisher must get
// the person to accept a code that differs from the one on their page.
const matchCodeLen = 4

// AMRChatConfirm says control of the chat was proven by a person pressing
// Confirm in it; the channel's type follows it in the amr claim.
const AMRChatConfirm = "chat_confirm"

// SignInStatus is where a sign-in request stands.
type SignInStatus string

// Sign-in states.
const (
	SignInPending   SignInStatus = "pending"
	SignInConfirmed SignInStatus = "confirmed"
	SignInDeclined  SignInStatus = "declined"
)

// ErrSignInUnknown: no sign-in request of that id (or it expired and was
// pruned).
var ErrSignInUnknown = errors.New("sign-in request unknown")

// SignInRequest is the part of an authorization request the domain reads
// and writes.
type SignInRequest struct {
	ID         string
	ClientID   string
	ClientName string
	MatchCode  string
	Status     SignInStatus
	PersonID   int64
	Subject    string
	AMR        []string
	AuthTime   time.Time
	ExpiresAt  time.Time
}

// SignInToken is a chat token as stored: hashed, for one channel.
type SignInToken struct {
	ID        int64
	Hash      []byte
	RequestID string
	Channel   string
	ExpiresAt time.Time
	UsedAt    time.Time
	CreatedAt time.Time
}

// SignInAuth is who authenticated a request and how.
type SignInAuth struct {
	PersonID int64
	Subject  string
	AMR      []string
	AuthTime time.Time
}

// SignInStore keeps sign-in requests, their chat tokens and the persons'
// subjects.
type SignInStore interface {
	SignInRequest(ctx context.Context, id string) (SignInRequest, error)
	// AddSignInTokens stores tokens for the request and sets its match code
	// if it has none yet; it returns the match code the request holds.
	AddSignInTokens(ctx context.Context, requestID, matchCode string, toks []SignInToken) (string, error)
	SignInTokenByHash(ctx context.Context, hash []byte) (SignInToken, error)
	// FinishSignIn spends the token (by leadID) and moves the pending
	// request to status with auth, in one transaction of conditional
	// updates; it reports whether both changed.
	FinishSignIn(ctx context.Context, tokenID, leadID int64, requestID string, status SignInStatus, auth SignInAuth, now time.Time) (bool, error)
	// AuthenticateSignIn moves a pending request to confirmed with auth
	// (an existing session); it reports whether it changed the row.
	AuthenticateSignIn(ctx context.Context, requestID string, auth SignInAuth, now time.Time) (bool, error)
	// SubjectOf returns the person's subject, storing candidate as it
	// when the person has none yet.
	SubjectOf(ctx context.Context, personID int64, candidate string, now time.Time) (string, error)
	// PersonBySubject finds the person of a subject and when it last
	// signed in.
	PersonBySubject(ctx context.Context, subject string) (personID int64, signedInAt time.Time, err error)
	// UseLoginProof records a platform's signed login (its hash) until
	// expiresAt; false when it was recorded before.
	UseLoginProof(ctx context.Context, hash []byte, expiresAt time.Time) (bool, error)
}

// SignInLink is one channel's way in: the deep link with a fresh token.
type SignInLink struct {
	Channel string
	URL     string
}

// SignInPage is what the hosted page shows.
type SignInPage struct {
	Request SignInRequest
	Links   []SignInLink
}

// SignInPreview is the sign-in question a bot asks.
type SignInPreview struct {
	SiteName  string
	MatchCode string
}

// SignIns runs the domain side of flow 7 beside the Service, whose
// channels and leads it uses.
type SignIns struct {
	svc   *Service
	store SignInStore
	ttl   time.Duration
	// types names each channel's platform ("telegram", "messenger") for
	// the amr and messengers claims.
	types map[string]string
}

// EnableSignIn lets the service answer sign-in tokens through the
// Confirmations calls. channelTypes maps a channel's name to its type.
func (s *Service) EnableSignIn(st SignInStore, tokenTTL time.Duration, channelTypes map[string]string) *SignIns {
	if tokenTTL <= 0 {
		tokenTTL = DefaultSignInTokenTTL
	}
	tokenTTL = min(tokenTTL, MaxSignInTokenTTL)
	si := &SignIns{svc: s, store: st, ttl: tokenTTL, types: channelTypes}
	s.mu.Lock()
	s.signIns = si
	s.mu.Unlock()
	return si
}

func (s *Service) signInsOf(token string) (*SignIns, bool) {
	if !strings.HasPrefix(token, signInTokenPrefix) {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signIns, s.signIns != nil
}

// ChannelType is the platform of a channel ("" when unknown).
func (si *SignIns) ChannelType(name string) string { return si.types[name] }

// Page issues a fresh token per configured channel for a pending request
// (a reload gets new links; earlier ones keep working until they expire)
// and fixes the request's match code on first use.
func (si *SignIns) Page(ctx context.Context, requestID string, channels []string) (SignInPage, error) {
	req, err := si.Status(ctx, requestID)
	if err != nil {
		return SignInPage{}, err
	}
	if req.Status != SignInPending {
		return SignInPage{Request: req}, nil
	}
	now := si.svc.now()
	var toks []SignInToken
	var links []SignInLink
	for _, ch := range channels {
		token, err := randomToken(si.svc.rand, signInTokenPrefix)
		if err != nil {
			return SignInPage{}, err
		}
		url, err := si.svc.deepLinkURL(ch, token)
		if err != nil {
			si.svc.log.Warn("sign-in link not offered", "channel", ch, "err", err)
			continue
		}
		exp := now.Add(si.ttl)
		if req.ExpiresAt.Before(exp) {
			exp = req.ExpiresAt
		}
		toks = append(toks, SignInToken{Hash: HashToken([]byte(token)), RequestID: req.ID, Channel: ch, ExpiresAt: exp, CreatedAt: now})
		links = append(links, SignInLink{Channel: ch, URL: url})
	}
	code, err := newMatchCode(si.svc.rand)
	if err != nil {
		return SignInPage{}, err
	}
	if req.MatchCode, err = si.store.AddSignInTokens(ctx, req.ID, code, toks); err != nil {
		return SignInPage{}, err
	}
	return SignInPage{Request: req, Links: links}, nil
}

// Resume authenticates a pending request from an existing session.
func (si *SignIns) Resume(ctx context.Context, requestID string, auth SignInAuth) error {
	sub, err := si.Subject(ctx, auth.PersonID)
	if err != nil {
		return err
	}
	auth.Subject = sub
	ok, err := si.store.AuthenticateSignIn(ctx, requestID, auth, si.svc.now())
	if err != nil {
		return err
	}
	if !ok {
		return ErrTokenUsed
	}
	return nil
}

// Status reads a request (the page polls it): ErrSignInUnknown when there
// is none, ErrTokenExpired once it expired.
func (si *SignIns) Status(ctx context.Context, id string) (SignInRequest, error) {
	req, err := si.store.SignInRequest(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return SignInRequest{}, ErrSignInUnknown
	}
	if err != nil {
		return SignInRequest{}, err
	}
	if !req.ExpiresAt.After(si.svc.now()) {
		return SignInRequest{}, ErrTokenExpired
	}
	return req, nil
}

// token finds a usable sign-in token opened in key's channel, with its
// request.
func (si *SignIns) token(ctx context.Context, key LeadKey, token string) (SignInToken, SignInRequest, error) {
	if !PlausibleLinkToken(strings.Replace(token, signInTokenPrefix, linkTokenPrefix, 1)) {
		return SignInToken{}, SignInRequest{}, ErrTokenUnknown
	}
	tok, err := si.store.SignInTokenByHash(ctx, HashToken([]byte(token)))
	if errors.Is(err, ErrNotFound) || err == nil && tok.Channel != key.Channel {
		return SignInToken{}, SignInRequest{}, ErrTokenUnknown
	}
	if err != nil {
		return SignInToken{}, SignInRequest{}, err
	}
	now := si.svc.now()
	if !tok.UsedAt.IsZero() {
		return SignInToken{}, SignInRequest{}, ErrTokenUsed
	}
	if !tok.ExpiresAt.After(now) {
		return SignInToken{}, SignInRequest{}, ErrTokenExpired
	}
	req, err := si.Status(ctx, tok.RequestID)
	if errors.Is(err, ErrSignInUnknown) {
		return SignInToken{}, SignInRequest{}, ErrTokenExpired
	}
	if err != nil {
		return SignInToken{}, SignInRequest{}, err
	}
	if req.Status != SignInPending {
		return SignInToken{}, SignInRequest{}, ErrTokenUsed
	}
	return tok, req, nil
}

func (si *SignIns) preview(ctx context.Context, key LeadKey, token string) (DeepLinkPreview, error) {
	tok, req, err := si.token(ctx, key, token)
	if err != nil {
		return DeepLinkPreview{}, err
	}
	return DeepLinkPreview{ExpiresAt: tok.ExpiresAt, SignIn: &SignInPreview{SiteName: req.ClientName, MatchCode: req.MatchCode}}, nil
}

// answer is the person's Confirm (status confirmed) or Cancel (declined).
func (si *SignIns) answer(ctx context.Context, key LeadKey, token string, status SignInStatus) (Result, error) {
	if err := validateLeadKey(key); err != nil {
		return Result{}, err
	}
	tok, req, err := si.token(ctx, key, token)
	if err != nil {
		return Result{}, err
	}
	now := si.svc.now()
	lead, err := si.svc.store.LeadByKey(ctx, key)
	if errors.Is(err, ErrNotFound) {
		lead, err = si.svc.store.CreateLead(ctx, key, Profile{}, now)
	}
	if err != nil {
		return Result{}, err
	}
	auth := SignInAuth{}
	if status == SignInConfirmed {
		if auth, err = si.auth(ctx, lead.PersonID, key.Channel, AMRChatConfirm, now); err != nil {
			return Result{}, err
		}
	}
	ok, err := si.store.FinishSignIn(ctx, tok.ID, lead.ID, req.ID, status, auth, now)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, ErrTokenUsed
	}
	si.svc.audit(ctx, si.svc.store, AuditEvent{Action: "oidc_signin", Outcome: string(status), PersonID: lead.PersonID, Detail: key.Channel})
	return Result{Outcome: OutcomeSignedIn, PersonID: lead.PersonID, Lead: lead}, nil
}

// Subject is the person's stable subject, made on first use.
func (si *SignIns) Subject(ctx context.Context, personID int64) (string, error) {
	candidate, err := randomToken(si.svc.rand, "")
	if err != nil {
		return "", err
	}
	return si.store.SubjectOf(ctx, personID, candidate, si.svc.now())
}

// auth is the person signing in at now through a chat of channel by
// method: the amr is the method, then the channel's type.
func (si *SignIns) auth(ctx context.Context, personID int64, channel, method string, now time.Time) (SignInAuth, error) {
	sub, err := si.Subject(ctx, personID)
	if err != nil {
		return SignInAuth{}, err
	}
	amr := []string{method}
	if t := si.types[channel]; t != "" {
		amr = append(amr, t)
	}
	return SignInAuth{PersonID: personID, Subject: sub, AMR: amr, AuthTime: now}, nil
}

// DeclineDeepLink is the person's Cancel. For a sign-in token it declines
// the request so the page can say so; a deep-link token stays unspent
// until it expires, as before.
func (s *Service) DeclineDeepLink(ctx context.Context, key LeadKey, token string) error {
	si, ok := s.signInsOf(token)
	if !ok {
		return nil
	}
	_, err := si.answer(ctx, key, token, SignInDeclined)
	return err
}

// newMatchCode draws the short code shown on the page and in the chat.
func newMatchCode(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, matchCodeLen)
	out := make([]byte, matchCodeLen)
	for i := 0; i < matchCodeLen; {
		if _, err := io.ReadFull(r, b[:1]); err != nil {
			return "", err
		}
		// Reject the tail above the largest multiple of the alphabet so
		// every character is equally likely.
		if int(b[0]) >= 256-256%len(matchCodeAlphabet) {
			continue
		}
		out[i] = matchCodeAlphabet[int(b[0])%len(matchCodeAlphabet)]
		i++
	}
	return string(out), nil
}
