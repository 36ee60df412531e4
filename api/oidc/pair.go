package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Bot-first sign-in: the hosted PIN page and Telegram's one tap.
//
//	GET  /pair?buid=...          the PIN form (the link in the bot's /login message)
//	POST /pair                   buid, pin, csrf: the right PIN signs the person in
//	POST /pair/resend            buid, csrf: the chat sends a fresh PIN; the page stays
//	GET  /pair/telegram/{name}   Telegram's login_url data: signs the person in, no PIN
//
// A sign-in starts a pairingd session (the provider's session cookie) and
// sends the browser to the channel's site: the client's
// initiate_login_uri with iss and login_hint (OpenID Connect Core 1.0,
// section 4, "Initiating Login from a Third Party"). The site's
// authorization request then completes from the session at once.
//
// The BUID is a secret: it arrives in the query of the GET only (the
// link in the chat), travels in form bodies from then on, never in a
// redirect, and the request log names routes, never URLs.

const (
	pairPath        = "/pair"
	pairResendPath  = "/pair/resend"
	pairOneTapPath  = "/pair/telegram/"
	pairCSRFPurpose = "pair"
	// maxBUIDLen bounds what is decoded; real BUIDs are about 40
	// characters.
	maxBUIDLen = 128
	// maxPairForm bounds a form body: a BUID, a PIN and a token.
	maxPairForm = 4 << 10
	// oneTapProofTTL is how long a used one-tap login is remembered:
	// longer than a checker accepts its data (minutes).
	oneTapProofTTL = 15 * time.Minute
)

// LoginChecker checks a platform's signed login data (Telegram's
// login_url parameters) and returns the chat's external id. Errors say
// nothing of the data.
type LoginChecker interface {
	CheckLogin(q url.Values) (externalID string, err error)
}

// Login check refusals a LoginChecker returns (wrapped).
var (
	ErrLoginInvalid = errors.New("login data invalid")
	ErrLoginStale   = errors.New("login data too old")
)

// pairView is what pair.html reads.
type pairView struct {
	view
	BUID         string
	PINLength    int
	Error        string // a text key, empty when none
	Notice       string // a text key
	AttemptsLeft int
	WaitSeconds  int
	WaitMinutes  int
	Resend       bool // "send me a new PIN" is the page's main action
	Form         bool // show the PIN form
	ResendURL    string
	ActionURL    string
	// Message is a page with nothing to do but read it (a text key).
	Message string
}

// T is the text of key in the page's locale, with the page's values.
func (v pairView) T(key string) string { return v.p.d.Texts.Text(v.Locale, key, v) }

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// pairClient is the site a channel's chats sign in to; ok is false when
// the operator set none or the client is gone.
func (p *Provider) pairClient(r *http.Request, channel string) (clientInfo, bool) {
	id := p.d.PINPageClients[channel]
	if id == "" {
		return clientInfo{}, false
	}
	c, err := p.d.Store.OIDCClient(r.Context(), id)
	if err != nil || !c.RevokedAt.IsZero() || c.InitiateLoginURI == "" {
		p.d.Log.Warn("hosted PIN page: the channel's pin_page_client is unknown, revoked or has no initiate_login_uri",
			"channel", channel, "client_id", id)
		return clientInfo{}, false
	}
	return clientInfo{name: c.Name, initiate: c.InitiateLoginURI}, true
}

type clientInfo struct{ name, initiate string }

func (p *Provider) servePair(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	switch {
	case r.URL.Path == pairPath && r.Method == http.MethodGet:
		p.pairPage(w, r)
	case r.URL.Path == pairPath && r.Method == http.MethodPost:
		p.pairSubmit(w, r)
	case r.URL.Path == pairResendPath && r.Method == http.MethodPost:
		p.pairResend(w, r)
	case strings.HasPrefix(r.URL.Path, pairOneTapPath) && r.Method == http.MethodGet:
		p.oneTap(w, r, strings.TrimPrefix(r.URL.Path, pairOneTapPath))
	default:
		p.pairMessage(w, r, http.StatusNotFound, "pair_link_unknown")
	}
}

// pairSite finds the site a BUID's chat signs in to; ok false means
// the answer is written.
func (p *Provider) pairSite(w http.ResponseWriter, r *http.Request, buid string) (clientInfo, bool) {
	if buid == "" || len(buid) > maxBUIDLen {
		p.pairMessage(w, r, http.StatusNotFound, "pair_link_unknown")
		return clientInfo{}, false
	}
	lead, err := p.d.SignIns.PINPageLead(r.Context(), buid)
	switch {
	case errors.Is(err, pairing.ErrBUIDUnknown):
		p.pairMessage(w, r, http.StatusNotFound, "pair_link_unknown")
		return clientInfo{}, false
	case err != nil:
		p.fail(w, r, err)
		return clientInfo{}, false
	}
	c, ok := p.pairClient(r, lead.Channel)
	if !ok {
		p.pairMessage(w, r, http.StatusNotFound, "pair_not_offered")
	}
	return c, ok
}

func (p *Provider) pairPage(w http.ResponseWriter, r *http.Request) {
	buid := r.URL.Query().Get("buid")
	c, ok := p.pairSite(w, r, buid)
	if !ok {
		return
	}
	if _, err := p.browser(w, r, true); err != nil {
		p.fail(w, r, err)
		return
	}
	p.renderPair(w, r, http.StatusOK, c, pairView{BUID: buid, Form: true})
}

// pairForm reads a POST of the page, checks its CSRF token and finds the
// BUID's site; ok false means the answer is written.
func (p *Provider) pairForm(w http.ResponseWriter, r *http.Request) (buid string, c clientInfo, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPairForm)
	if err := r.ParseForm(); err != nil {
		p.pairMessage(w, r, http.StatusBadRequest, "pair_form_invalid")
		return "", clientInfo{}, false
	}
	want := p.csrf.Token(cookieValue(r, browserCookie), pairCSRFPurpose)
	if want == "" || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(want)) {
		p.pairMessage(w, r, http.StatusForbidden, "signin_csrf")
		return "", clientInfo{}, false
	}
	buid = r.PostForm.Get("buid")
	c, ok = p.pairSite(w, r, buid)
	return buid, c, ok
}

func (p *Provider) pairSubmit(w http.ResponseWriter, r *http.Request) {
	buid, c, ok := p.pairForm(w, r)
	if !ok {
		return
	}
	in, err := p.d.SignIns.SignInWithPIN(r.Context(), buid, r.PostForm.Get("pin"))
	if err == nil {
		p.signedIn(w, r, c, in)
		return
	}
	v := pairView{BUID: buid, Form: true}
	var ae *pairing.AttemptsError
	var fe *pairing.FieldError
	var re *pairing.RetryError
	status := http.StatusUnprocessableEntity
	switch {
	case errors.As(err, &fe):
		status, v.Error = http.StatusBadRequest, "pair_pin_malformed"
	case errors.Is(err, pairing.ErrBUIDUnknown):
		p.pairMessage(w, r, http.StatusNotFound, "pair_link_unknown")
		return
	case errors.As(err, &ae) && errors.Is(err, pairing.ErrPINInvalid) && ae.AttemptsLeft > 0:
		v.Error, v.AttemptsLeft = "pair_pin_wrong", ae.AttemptsLeft
	case errors.As(err, &ae):
		// The last wrong PIN and every attempt during the lock: a new PIN
		// does not lift the lock, so no resend button.
		status, v.Message, v.Form = http.StatusLocked, "pair_pin_locked", false
		v.WaitMinutes = max(int(math.Ceil(ae.LockedUntil.Sub(p.d.Clock.Now()).Minutes())), 1)
	case errors.Is(err, pairing.ErrPINExpired):
		status, v.Error, v.Form, v.Resend = http.StatusGone, "pair_pin_expired", false, true
	case errors.Is(err, pairing.ErrPINUsed):
		status, v.Error, v.Form, v.Resend = http.StatusGone, "pair_pin_used", false, true
	case errors.As(err, &re):
		status, v.Error, v.WaitSeconds = http.StatusTooManyRequests, "pair_wait", max(int(re.RetryAfter.Seconds()), 1)
	default:
		p.fail(w, r, err)
		return
	}
	p.renderPair(w, r, status, c, v)
}

// pairResend has the chat send a fresh PIN and shows the form again with
// the new BUID, so the page the person is on keeps working (only the
// holder of the current BUID can ask, and the PIN goes to the chat).
func (p *Provider) pairResend(w http.ResponseWriter, r *http.Request) {
	buid, c, ok := p.pairForm(w, r)
	if !ok {
		return
	}
	pin, err := p.d.SignIns.ResendPIN(r.Context(), buid)
	var re *pairing.RetryError
	var ce *pairing.ChannelError
	switch {
	case err == nil:
		p.renderPair(w, r, http.StatusOK, c, pairView{BUID: pin.BUID, Form: true, Notice: "pair_resent"})
	case errors.As(err, &re):
		p.renderPair(w, r, http.StatusTooManyRequests, c, pairView{BUID: buid, Form: true,
			Error: "pair_resend_wait", WaitSeconds: max(int(re.RetryAfter.Seconds()), 1)})
	case errors.Is(err, pairing.ErrBUIDUnknown):
		p.pairMessage(w, r, http.StatusNotFound, "pair_link_unknown")
	case errors.As(err, &ce):
		p.d.Log.Warn("hosted PIN page: resend failed", "channel", ce.Channel, "err", err)
		p.renderPair(w, r, http.StatusServiceUnavailable, c, pairView{BUID: buid, Form: true, Error: "pair_resend_failed"})
	default:
		p.fail(w, r, err)
	}
}

// oneTap is Telegram's login_url: the query is the user's data signed
// with the bot's token; a valid, recent one signs the chat's person in.
func (p *Provider) oneTap(w http.ResponseWriter, r *http.Request, channel string) {
	check, ok := p.d.LoginCheckers[channel]
	if !ok {
		p.pairMessage(w, r, http.StatusNotFound, "pair_not_offered")
		return
	}
	c, ok := p.pairClient(r, channel)
	if !ok {
		p.pairMessage(w, r, http.StatusNotFound, "pair_not_offered")
		return
	}
	ext, err := check.CheckLogin(r.URL.Query())
	switch {
	case errors.Is(err, ErrLoginStale):
		p.pairMessage(w, r, http.StatusUnauthorized, "pair_onetap_stale")
		return
	case err != nil:
		p.d.Log.Info("one-tap sign-in refused", "channel", channel, "err", err)
		p.pairMessage(w, r, http.StatusUnauthorized, "pair_onetap_invalid")
		return
	}
	// One signed login opens one session: whoever finds the URL later
	// (history, a shared screen) cannot open another.
	sum := sha256.Sum256([]byte(r.URL.Query().Get("hash")))
	proof := pairing.ChatProof{Hash: sum[:], Until: p.d.Clock.Now().Add(oneTapProofTTL)}
	in, err := p.d.SignIns.SignInChat(r.Context(), pairing.LeadKey{Channel: channel, ExternalID: ext}, pairing.AMRTelegramLogin, proof)
	var ce *pairing.ChannelError
	switch {
	case errors.Is(err, pairing.ErrTokenUsed):
		p.pairMessage(w, r, http.StatusUnauthorized, "pair_onetap_stale")
		return
	case errors.Is(err, pairing.ErrNotFound):
		p.pairMessage(w, r, http.StatusNotFound, "pair_onetap_no_chat")
		return
	case errors.As(err, &ce):
		p.pairMessage(w, r, http.StatusForbidden, "pair_onetap_no_chat")
		return
	case err != nil:
		p.fail(w, r, err)
		return
	}
	p.signedIn(w, r, c, in)
}

// signedIn starts the session and sends the browser to the site, which
// starts its authorization request (OpenID Connect Core 1.0, section 4).
func (p *Provider) signedIn(w http.ResponseWriter, r *http.Request, c clientInfo, in pairing.ChatSignIn) {
	if p.cfg.SessionTTL <= 0 {
		p.d.Log.Error("hosted PIN page: oidc.session_ttl is 0, so nobody can stay signed in")
		p.message(w, r, http.StatusInternalServerError, "signin_error", "")
		return
	}
	now := p.d.Clock.Now().UTC()
	if err := p.newSession(w, r, in.Auth.PersonID, in.Auth.AMR, in.Auth.AuthTime, now); err != nil {
		p.fail(w, r, err)
		return
	}
	q := url.Values{"iss": {p.issuer}, "login_hint": {in.Auth.Subject}}
	http.Redirect(w, r, appendQuery(c.initiate, q), http.StatusSeeOther)
}

func (p *Provider) renderPair(w http.ResponseWriter, r *http.Request, status int, c clientInfo, v pairView) {
	v.view = view{p: p, Locale: p.locale(r, nil), Site: c.name, CSRF: p.csrf.Token(cookieValue(r, browserCookie), pairCSRFPurpose)}
	v.PINLength = p.d.PINLength
	v.ActionURL, v.ResendURL = pairPath, pairResendPath
	p.renderData(w, status, "pair.html", v, v.Locale, originOf(c.initiate))
}

// pairMessage is a page that only says something (an unknown link, a
// refused one-tap): it points back to the chat, not to a site.
func (p *Provider) pairMessage(w http.ResponseWriter, r *http.Request, status int, key string) {
	v := pairView{view: view{p: p, Locale: p.locale(r, nil)}, Message: key}
	p.renderData(w, status, "pair.html", v, v.Locale, "")
}

// originOf is scheme://host of a URL, or "" when it has none.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
