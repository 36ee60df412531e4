package oidc

import (
	"html/template"
	"net/http"
	"time"

	"github.com/pairingd/pairingd/api/webpage"
	"github.com/pairingd/pairingd/pairing"
)

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
		CSRF: p.csrf.Token(cookieValue(r, browserCookie), a.rec.ID), PollMillis: p.cfg.PollInterval.Milliseconds(),
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

// render writes a page (api/webpage: headers, CSP, buffered template).
// The cancel form's answer redirects to the site, so its origin is a
// form target.
func (p *Provider) render(w http.ResponseWriter, _ *http.Request, status int, name string, v view) {
	p.renderData(w, status, name, v, v.Locale, v.formOrigin)
}

// renderData writes page name with data; formTarget is a URL whose origin
// a form on the page may end up at besides this one (browsers apply
// form-action to a redirect after a form post).
func (p *Provider) renderData(w http.ResponseWriter, status int, name string, data any, locale, formTarget string) {
	webpage.Renderer{Pages: p.d.Pages, Log: p.d.Log}.Render(w, status, name, locale, data, webpage.Origin(formTarget))
}
