package oidc

import (
	"bytes"
	"crypto/sha256"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var sha256New = sha256.New

// view is what a page template reads: T renders a text of the page's
// locale.
type view struct {
	p      *Provider
	Locale string
	Site   string
	// The sign-in page.
	MatchCode   string
	Channels    []viewChannel
	ContinueURL string
	StatusURL   string
	CancelURL   string
	CSRF        string
	PollMillis  int64
	ExpiresMins int
	// A message page.
	Message    string
	RestartURL string
	// formOrigin is the site the cancel form's redirect goes to.
	formOrigin string
}

type viewChannel struct {
	Name, Type, URL, Label string
	// QR is a data: URI of our own PNG; html/template would otherwise
	// replace it as an unsafe URL.
	QR template.URL
}

// T is the text of key in the page's locale.
func (v view) T(key string) string { return v.p.d.Texts.Text(v.Locale, key, v) }

func (p *Provider) pageData(r *http.Request, a authRequest, pg pairing.SignInPage) view {
	v := view{
		p: p, Locale: p.locale(r, a.p.UILocales), Site: pg.Request.ClientName, MatchCode: pg.Request.MatchCode,
		ContinueURL: signInPath + a.rec.ID, StatusURL: signInPath + a.rec.ID + "/status", CancelURL: signInPath + a.rec.ID + "/cancel",
		CSRF: p.csrf(r, a.rec.ID), PollMillis: p.cfg.PollInterval.Milliseconds(),
		formOrigin:  a.p.RedirectURI,
		ExpiresMins: int((a.rec.ExpiresAt.Sub(p.d.Clock.Now()) + time.Minute - 1) / time.Minute),
	}
	for _, l := range pg.Links {
		t := p.d.SignIns.ChannelType(l.Channel)
		v.Channels = append(v.Channels, viewChannel{Name: l.Channel, Type: t, URL: l.URL, QR: p.qrDataURI(l.URL), Label: p.d.Texts.Text(v.Locale, "signin_open_"+t, nil)})
	}
	return v
}

func (p *Provider) message(w http.ResponseWriter, r *http.Request, status int, key, restart string) {
	v := view{p: p, Locale: p.locale(r, nil), Message: key, RestartURL: restart}
	p.render(w, r, status, "signin_message.html", v)
}

func (p *Provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.d.Log.Error("sign-in page failed", "err", err)
	p.message(w, r, http.StatusInternalServerError, "signin_error", "")
}

// render writes a page with a strict CSP: scripts, styles and fetches only
// from this origin, images also as data: URIs (the QR codes), forms only
// to this origin and the sites' redirect targets of a cancel.
func (p *Provider) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	p.renderData(w, status, name, v, v.Locale, formTargets(r, v))
}

// renderData writes page name with data; formTarget is the one origin
// besides this one that a form on the page may end up at (a redirect after
// a form post counts for form-action).
func (p *Provider) renderData(w http.ResponseWriter, status int, name string, data any, locale, formTarget string) {
	var b bytes.Buffer
	if err := p.d.Pages.ExecuteTemplate(&b, name, data); err != nil {
		p.d.Log.Error("sign-in page template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self' "+formTarget+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Language", locale)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// formTargets allows the cancel form's redirect to the site (browsers
// apply form-action to redirects after a form post).
func formTargets(_ *http.Request, v view) string {
	u, err := url.Parse(v.formOrigin)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
