package site

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// pendingTTL bounds a sign-in between /login and /callback.
const pendingTTL = 10 * time.Minute

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	sess := s.current(r)
	if sess != nil {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "home.html", pageData{Site: s.cfg.Name, BotURL: s.cfg.BotURL})
}

// login starts a sign-in: the "Sign in with Telegram" button, and the
// initiate_login_uri pairingd sends a person to who signed in from the
// chat (iss names pairingd; login_hint is passed back unchanged).
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if iss := q.Get("iss"); iss != "" && iss != s.cfg.Issuer {
		// OpenID Connect Core 4: only start a sign-in at an issuer we know.
		s.render(w, http.StatusBadRequest, "error.html", pageData{Site: s.cfg.Name, Error: "That sign-in came from an issuer this site does not use."})
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	s.mu.Lock()
	for k, p := range s.pending { // drop abandoned sign-ins
		if time.Since(p.created) > pendingTTL {
			delete(s.pending, k)
		}
	}
	s.pending[state] = &pending{verifier: verifier, nonce: nonce, created: time.Now()}
	s.mu.Unlock()
	// The state also goes into a cookie, so that only the browser that
	// started the sign-in can finish it.
	http.SetCookie(w, &http.Cookie{Name: "site_state", Value: state, Path: "/callback", MaxAge: int(pendingTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secure()})
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if hint := q.Get("login_hint"); hint != "" && len(hint) <= 512 {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	http.Redirect(w, r, s.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

func (s *Site) secure() bool { return len(s.cfg.BaseURL) > 8 && s.cfg.BaseURL[:8] == "https://" }

// callback finishes the sign-in: state, iss (RFC 9207), the code exchange
// with the PKCE verifier, the ID token's signature, audience, expiry and
// nonce. Then the site_user_id claim says whether this person has an
// account here.
func (s *Site) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(status int, msg string) {
		s.render(w, status, "error.html", pageData{Site: s.cfg.Name, Error: msg})
	}
	state := q.Get("state")
	c, err := r.Cookie("site_state")
	if err != nil || state == "" || c.Value != state {
		fail(http.StatusBadRequest, "This sign-in was not started in this browser, or it took too long. Please sign in again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "site_state", Value: "", Path: "/callback", MaxAge: -1})
	s.mu.Lock()
	p := s.pending[state]
	delete(s.pending, state)
	s.mu.Unlock()
	if p == nil || time.Since(p.created) > pendingTTL {
		fail(http.StatusBadRequest, "This sign-in has expired. Please sign in again.")
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != s.cfg.Issuer {
		fail(http.StatusBadRequest, "The sign-in answer came from the wrong issuer.")
		return
	}
	if e := q.Get("error"); e != "" {
		// access_denied: the person cancelled in the chat or on the page.
		msg := "The sign-in did not complete (" + e + ")."
		if e == "access_denied" {
			msg = "The sign-in was cancelled."
		}
		fail(http.StatusOK, msg)
		return
	}
	ctx := r.Context()
	tok, err := s.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		s.log.Warn("code exchange failed", "err", err)
		fail(http.StatusBadGateway, "The sign-in could not be completed. Please try again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := s.verifier.Verify(ctx, raw)
	if err != nil || idt.Nonce != p.nonce {
		s.log.Warn("ID token refused", "err", err)
		fail(http.StatusBadGateway, "The sign-in answer did not check out. Please try again.")
		return
	}
	var claims map[string]any
	var known struct {
		SiteUserID string `json:"site_user_id"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Claims(&known) != nil {
		fail(http.StatusBadGateway, "The sign-in answer did not check out. Please try again.")
		return
	}
	sess := &session{sub: idt.Subject, claims: claims}
	if known.SiteUserID != "" {
		// "match": pairingd knows this person as one of our accounts.
		sess.userID = known.SiteUserID
		s.ensureAccount(known.SiteUserID, displayName(claims))
	}
	s.startSession(w, r, sess)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func displayName(claims map[string]any) string {
	for _, k := range []string{"name", "given_name", "preferred_username"} {
		if v, ok := claims[k].(string); ok && v != "" {
			return v
		}
	}
	return "friend"
}

// ensureAccount knows an account linked at pairingd even after this
// in-memory site restarted (a real site finds it in its database).
func (s *Site) ensureAccount(id, name string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[id]; ok {
		return a
	}
	a := &account{ID: id, Name: name, Created: time.Now()}
	s.accounts[id] = a
	return a
}

func (s *Site) accountPage(w http.ResponseWriter, r *http.Request) {
	sess := s.current(r)
	if sess == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d := pageData{Site: s.cfg.Name, Session: s.view(sess)}
	s.mu.Lock()
	d.Flash, sess.flash = sess.flash, ""
	if sess.userID != "" {
		d.Account = s.accounts[sess.userID]
	}
	s.mu.Unlock()
	if d.Account != nil {
		// Which messengers reach this account now (GET /v1/links/{user_id}).
		link, err := s.api.link(r.Context(), d.Account.ID)
		if err != nil {
			s.log.Warn("GET /v1/links failed", "err", err)
		}
		d.Telegram = link
	}
	s.render(w, http.StatusOK, "account.html", d)
}

// createAccount is the "register" case: the person signed in with
// Telegram and has no account here yet. The site makes one, then links it
// to the person by the ID token's sub.
func (s *Site) createAccount(w http.ResponseWriter, r *http.Request) {
	sess := s.postSession(w, r)
	if sess == nil {
		return
	}
	s.mu.Lock()
	done := sess.userID != ""
	s.nextUser++
	id := "shop-user-" + strconv.Itoa(s.nextUser)
	s.mu.Unlock()
	if done {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	err := s.api.linkSubject(r.Context(), sess.sub, id)
	if err == nil {
		s.ensureAccount(id, displayName(sess.claims))
	}
	var ae *apiError
	s.mu.Lock()
	switch {
	case err == nil:
		sess.userID = id
		sess.flash = "Your account " + id + " is ready, and Telegram signs you in to it from now on."
	case errors.As(err, &ae) && ae.Code == "token_expired":
		sess.flash = "That sign-in is too old to link. Please sign out and sign in again."
	default:
		s.log.Warn("POST /v1/links/oidc failed", "err", err)
		sess.flash = "The account could not be linked: " + errorText(err)
	}
	s.mu.Unlock()
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// connect is "Connect Telegram": a one-time deep link and its QR code for
// the signed-in account; the person confirms in the chat.
func (s *Site) connect(w http.ResponseWriter, r *http.Request) {
	sess := s.postSession(w, r)
	if sess == nil {
		return
	}
	v := s.view(sess)
	if v.UserID == "" {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	dl, err := s.api.deepLink(r.Context(), v.UserID, s.cfg.Channel, displayName(v.Claims)+" ("+v.UserID+")")
	if err != nil {
		s.log.Warn("POST /v1/deep-links failed", "err", err)
		s.render(w, http.StatusBadGateway, "error.html", pageData{Site: s.cfg.Name, Session: v, Error: "No link right now: " + errorText(err)})
		return
	}
	s.render(w, http.StatusOK, "connect.html", pageData{Site: s.cfg.Name, Session: v, DeepLink: dl})
}

// notify is "Send me a test notification": a message to the person's
// messengers by this site's user id; pairingd queues and delivers it.
func (s *Site) notify(w http.ResponseWriter, r *http.Request) {
	sess := s.postSession(w, r)
	if sess == nil {
		return
	}
	userID := s.view(sess).UserID
	if userID == "" {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	text := "Hello from " + s.cfg.Name + "! This is a test notification for " + userID + ", sent at " + time.Now().Format("15:04:05") + "."
	err := s.api.notify(r.Context(), userID, text)
	var ae *apiError
	s.mu.Lock()
	switch {
	case err == nil:
		sess.flash = "Sent: look in your Telegram chat."
	case errors.As(err, &ae) && ae.Code == "not_linked":
		sess.flash = "No messenger is linked to your account: use Connect Telegram first."
	default:
		sess.flash = "Not sent: " + errorText(err)
	}
	s.mu.Unlock()
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// logout ends the site's session, then pairingd's (RP-Initiated Logout),
// which sends the browser back to /signed-out.
func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	sess := s.postSession(w, r)
	if sess == nil {
		return
	}
	s.endSession(w, r)
	if s.endSess == "" {
		http.Redirect(w, r, "/signed-out", http.StatusSeeOther)
		return
	}
	// client_id names the site instead of id_token_hint, which would put
	// the ID token in a URL (browser history, proxy logs).
	v := url.Values{"client_id": {s.cfg.ClientID}, "post_logout_redirect_uri": {s.cfg.BaseURL + "/signed-out"}}
	http.Redirect(w, r, s.endSess+"?"+v.Encode(), http.StatusSeeOther)
}

func (s *Site) signedOut(w http.ResponseWriter, _ *http.Request) {
	s.render(w, http.StatusOK, "home.html", pageData{Site: s.cfg.Name, BotURL: s.cfg.BotURL, Flash: "You are signed out."})
}

// errorText is a failure as the person may read it: pairingd's error
// message, never a token.
func errorText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "pairingd did not answer"
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}
