package oidc

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/pairingd/pairingd/api/webpage"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// The hosted sign-in pages. A page URL carries only the request id, which
// grants nothing by itself: the request is bound to the browser that first
// opened its page (a cookie), and only that browser gets the code.
//
//	GET  /signin/{id}         the page: one deep link + QR code per channel, or the finish
//	GET  /signin/{id}/status  {"status": ...} for the page's script
//	POST /signin/{id}/cancel  the person gives up (CSRF token); the site gets access_denied

const (
	browserCookie = "pairingd_browser"
	sessionCookie = "pairingd_session"
)

// Page statuses the script acts on.
const (
	statusPending   = "pending"
	statusConfirmed = "confirmed"
	statusDeclined  = "declined"
	statusExpired   = "expired"
)

func (p *Provider) servePage(w http.ResponseWriter, r *http.Request) {
	webpage.SetHeaders(w.Header())
	rest := strings.TrimPrefix(r.URL.Path, signInPath)
	id, action, _ := strings.Cut(rest, "/")
	if id == "" || len(id) > 64 {
		p.message(w, r, http.StatusNotFound, "signin_unknown", "")
		return
	}
	switch {
	case action == "" && r.Method == http.MethodGet:
		p.page(w, r, id)
	case action == "status" && r.Method == http.MethodGet:
		p.status(w, r, id)
	case action == "cancel" && r.Method == http.MethodPost:
		p.cancel(w, r, id)
	default:
		p.message(w, r, http.StatusNotFound, "signin_unknown", "")
	}
}

// request loads a request for this browser; ok false means the answer is
// written.
func (p *Provider) request(w http.ResponseWriter, r *http.Request, id string, bind bool) (authRequest, bool) {
	rec, err := p.d.Store.AuthRequest(r.Context(), id)
	now := p.d.Clock.Now()
	switch {
	case errors.Is(err, pairing.ErrNotFound) || err == nil && !rec.ExpiresAt.After(now):
		p.message(w, r, http.StatusGone, "signin_expired", p.restartURL(r, rec.ClientID))
		return authRequest{}, false
	case err != nil:
		p.fail(w, r, err)
		return authRequest{}, false
	}
	browser, err := p.browser(w, r, bind)
	if err != nil {
		p.fail(w, r, err)
		return authRequest{}, false
	}
	ok := false
	if bind {
		ok, err = p.d.Store.BindBrowser(r.Context(), id, hash(browser))
	} else {
		ok = browser != "" && hmac.Equal(rec.BrowserHash, hash(browser))
	}
	if err != nil {
		p.fail(w, r, err)
		return authRequest{}, false
	}
	if !ok {
		p.message(w, r, http.StatusForbidden, "signin_other_browser", p.restartURL(r, rec.ClientID))
		return authRequest{}, false
	}
	a, err := requestOf(rec)
	if err != nil {
		p.fail(w, r, err)
		return authRequest{}, false
	}
	return a, true
}

func (p *Provider) page(w http.ResponseWriter, r *http.Request, id string) {
	a, ok := p.request(w, r, id, true)
	if !ok {
		return
	}
	ctx := r.Context()
	switch a.rec.Status {
	case pairing.SignInConfirmed:
		p.finish(w, r, a, true)
		return
	case pairing.SignInDeclined:
		p.declined(w, r, a)
		return
	}
	if s, ok := p.session(r); ok && !a.promptLogin() && a.sessionFresh(s.AuthTime, p.d.Clock.Now()) && p.hintMatches(r, a, s) {
		err := p.d.SignIns.Resume(ctx, a.rec.ID, pairing.SignInAuth{PersonID: s.PersonID, AMR: s.AMR, AuthTime: s.AuthTime})
		if err == nil {
			if a, ok = p.request(w, r, id, false); ok {
				p.finish(w, r, a, false)
			}
			return
		}
		if !errors.Is(err, pairing.ErrTokenUsed) {
			p.fail(w, r, err)
			return
		}
	}
	if a.promptNone() {
		op.AuthRequestError(w, r, a, oidc.ErrLoginRequired(), p.op)
		return
	}
	pg, err := p.d.SignIns.Page(ctx, a.rec.ID, p.chanNames)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "signin.html", p.pageData(r, a, pg))
}

// declined is the page after Cancel in the chat. Its button takes the
// person back to the site with access_denied (through the cancel form),
// so the site shows its own sign-in again instead of leaving a dead end.
func (p *Provider) declined(w http.ResponseWriter, r *http.Request, a authRequest) {
	req, err := p.d.SignIns.Status(r.Context(), a.rec.ID)
	if err != nil {
		p.message(w, r, http.StatusOK, "signin_declined", p.restartURL(r, a.rec.ClientID))
		return
	}
	v := view{
		p: p, Locale: p.locale(r, a.p.UILocales), Site: req.ClientName, Message: "signin_declined",
		CancelURL: signInPath + a.rec.ID + "/cancel", CSRF: p.csrf.Token(cookieValue(r, browserCookie), a.rec.ID),
		formOrigin: a.p.RedirectURI,
	}
	p.render(w, r, http.StatusOK, "signin_message.html", v)
}

// hintMatches: a login_hint (the subject the hosted PIN page named when it
// sent the browser to the site) must be the session's person; a session of
// someone else does not answer for them.
func (p *Provider) hintMatches(r *http.Request, a authRequest, s store.SessionRecord) bool {
	if a.p.LoginHint == "" {
		return true
	}
	sub, err := p.d.SignIns.Subject(r.Context(), s.PersonID)
	return err == nil && sub == a.p.LoginHint
}

// finish gives the browser its code: a redirect to the site with code,
// state and iss (RFC 9207). A chat confirmation also starts a session.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, a authRequest, newSession bool) {
	ctx := r.Context()
	now := p.d.Clock.Now().UTC()
	code, err := randomID("")
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if err := p.d.Store.SetAuthCode(ctx, a.rec.ID, hash(code), now.Add(p.cfg.codeLifetime())); err != nil {
		if errors.Is(err, pairing.ErrTokenUsed) {
			p.message(w, r, http.StatusGone, "signin_used", p.restartURL(r, a.rec.ClientID))
			return
		}
		p.fail(w, r, err)
		return
	}
	if newSession && p.cfg.SessionTTL > 0 {
		if err := p.newSession(w, r, a.rec.PersonID, a.rec.AMR, a.rec.AuthTime, now); err != nil {
			p.d.Log.Warn("sign-in session not started", "err", err)
		}
	}
	q := url.Values{"code": {code}, "iss": {p.issuer}}
	if a.p.State != "" {
		q.Set("state", a.p.State)
	}
	http.Redirect(w, r, appendQuery(a.p.RedirectURI, q), http.StatusSeeOther)
}

func (p *Provider) status(w http.ResponseWriter, r *http.Request, id string) {
	a, ok := p.request(w, r, id, false)
	if !ok {
		return
	}
	st := statusPending
	switch a.rec.Status {
	case pairing.SignInConfirmed:
		st = statusConfirmed
	case pairing.SignInDeclined:
		st = statusDeclined
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"status": st})
}

// cancel: the person gave up on the page; the site hears access_denied.
func (p *Provider) cancel(w http.ResponseWriter, r *http.Request, id string) {
	a, ok := p.request(w, r, id, false)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil || !p.csrf.Valid(cookieValue(r, browserCookie), id, r.PostForm.Get("csrf")) {
		p.message(w, r, http.StatusForbidden, "signin_csrf", "")
		return
	}
	op.AuthRequestError(w, r, a, oidc.ErrAccessDenied().WithDescription("the person cancelled the sign-in"), p.op)
}

// restartURL is where "start again" leads: the client's
// initiate_login_uri, or nothing.
func (p *Provider) restartURL(r *http.Request, clientID string) string {
	if clientID == "" {
		return ""
	}
	c, err := p.d.Store.OIDCClient(r.Context(), clientID)
	if err != nil || c.InitiateLoginURI == "" {
		return ""
	}
	return appendQuery(c.InitiateLoginURI, url.Values{"iss": {p.issuer}})
}

// browser returns this browser's binding secret, setting a new one when
// create is set and there is none.
func (p *Provider) browser(w http.ResponseWriter, r *http.Request, create bool) (string, error) {
	if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) >= 43 && len(c.Value) <= 64 {
		return c.Value, nil
	}
	if !create {
		return "", nil
	}
	v, err := randomID("")
	if err != nil {
		return "", err
	}
	p.cookies.Set(w, browserCookie, v, p.cfg.RequestTTL)
	r.AddCookie(&http.Cookie{Name: browserCookie, Value: v})
	return v, nil
}

func (p *Provider) session(r *http.Request) (store.SessionRecord, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 64 {
		return store.SessionRecord{}, false
	}
	s, err := p.d.Store.Session(r.Context(), hash(c.Value))
	if err != nil || !s.ExpiresAt.After(p.d.Clock.Now()) {
		return store.SessionRecord{}, false
	}
	return s, true
}

// newSession stores a session of personID and sets its cookie.
func (p *Provider) newSession(w http.ResponseWriter, r *http.Request, personID int64, amr []string, authTime, now time.Time) error {
	v, err := randomID("")
	if err != nil {
		return err
	}
	rec := store.SessionRecord{Hash: hash(v), PersonID: personID, AMR: amr, AuthTime: authTime, ExpiresAt: now.Add(p.cfg.SessionTTL), CreatedAt: now}
	if err := p.d.Store.CreateSession(r.Context(), rec); err != nil {
		return err
	}
	p.cookies.Set(w, sessionCookie, v, p.cfg.SessionTTL)
	return nil
}

// cookieValue is the request's cookie name, "" when absent.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// locale is the page language: the request's ui_locales, then
// Accept-Language.
func (p *Provider) locale(r *http.Request, uiLocales []string) string {
	return p.locales.Pick(r, uiLocales...)
}

func (p *Provider) qrDataURI(link string) template.URL {
	u, err := webpage.QRDataURI(link)
	if err != nil {
		p.d.Log.Warn("sign-in QR code not made", "err", err)
	}
	return u
}

func appendQuery(raw string, q url.Values) string {
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return raw + sep + q.Encode()
}
