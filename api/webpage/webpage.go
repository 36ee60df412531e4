// Package webpage holds what every page pairingd serves to a person's
// browser shares (the OpenID Connect sign-in pages, the hosted PIN page):
// the security headers and Content-Security-Policy, rendering a template
// into a buffer first so a failed template never sends half a page, the
// page language from Accept-Language, CSRF tokens bound to a browser
// cookie, cookie flags, QR codes as data: URIs, and the static assets.
//
// The pages load no inline script and no third-party resource: scripts
// and style sheets come from this origin (Assets), QR codes are data:
// images made here.
package webpage

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/skip2/go-qrcode"
	"golang.org/x/text/language"
)

// SetHeaders sets the headers every page answer carries, also the ones
// that are not HTML (status polling): never stored by a cache, no
// Referer sent onwards (page URLs name a request), no sniffing, no
// framing.
func SetHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// CSP is the pages' Content-Security-Policy: scripts, styles and fetches
// only from this origin (no inline script), images also as data: URIs
// (the QR codes), forms only to this origin and formTargets (origins a
// form's answer redirects to: browsers apply form-action to redirects
// after a form post).
func CSP(formTargets ...string) string {
	fa := "'self'"
	for _, t := range formTargets {
		if t != "" {
			fa += " " + t
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action " + fa + "; frame-ancestors 'none'; base-uri 'none'"
}

// Origin is what CSP's formTargets name for a redirect target:
// scheme://host of an http(s) URL, "scheme:" of an app's private-use
// scheme (a native client's redirect URI, RFC 8252), "" for anything else.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return ""
	}
	switch s := strings.ToLower(u.Scheme); {
	case s == "https" || s == "http":
		if u.Host == "" {
			return ""
		}
		return s + "://" + u.Host
	case s == "javascript" || s == "data" || s == "blob" || s == "file" || s == "about":
		return ""
	case strings.Contains(s, "."):
		// Private-use schemes are reverse domain names (RFC 8252, 7.1).
		return s + ":"
	}
	return ""
}

// Renderer executes the page templates.
type Renderer struct {
	Pages *template.Template
	Log   *slog.Logger
}

// Render writes template name with data as a complete HTML answer with
// SetHeaders and CSP(formTargets...). The template runs into a buffer
// first: on a template error the person gets a plain 500 and the log says
// which page failed.
func (r Renderer) Render(w http.ResponseWriter, status int, name, locale string, data any, formTargets ...string) {
	var b bytes.Buffer
	if err := r.Pages.ExecuteTemplate(&b, name, data); err != nil {
		if r.Log != nil {
			r.Log.Error("page template failed", "page", name, "err", err)
		}
		SetHeaders(w.Header())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	SetHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP(formTargets...))
	if locale != "" {
		h.Set("Content-Language", locale)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// Locales picks a page language among the locales the texts have.
type Locales struct {
	list    []string
	matcher language.Matcher
}

// NewLocales takes the locales of the text catalog, the fallback first.
func NewLocales(locales []string) (*Locales, error) {
	if len(locales) == 0 {
		return nil, errors.New("webpage: no locales")
	}
	tags := make([]language.Tag, 0, len(locales))
	for _, l := range locales {
		t, err := language.Parse(l)
		if err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return &Locales{list: locales, matcher: language.NewMatcher(tags)}, nil
}

// Tags are the locales as language tags, in catalog order.
func (l *Locales) Tags() []language.Tag {
	out := make([]language.Tag, len(l.list))
	for i, s := range l.list {
		out[i] = language.MustParse(s)
	}
	return out
}

// Pick is the page language: the preferred locales first (an OpenID
// request's ui_locales), then the request's Accept-Language, else the
// fallback.
func (l *Locales) Pick(r *http.Request, preferred ...string) string {
	var tags []language.Tag
	for _, p := range preferred {
		if t, err := language.Parse(p); err == nil {
			tags = append(tags, t)
		}
	}
	al, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	tags = append(tags, al...)
	_, idx, conf := l.matcher.Match(tags...)
	if conf == language.No {
		return l.list[0]
	}
	return l.list[idx]
}

// CSRF makes and checks form tokens: an HMAC of a secret the browser
// holds in an HttpOnly cookie and what the form acts on, so another site
// can neither read nor forge one.
type CSRF struct{ key []byte }

// NewCSRF keys the tokens; the key must be the same on every instance.
func NewCSRF(key []byte) CSRF { return CSRF{key: key} }

// Token is the form token of binding (the browser's cookie value) and
// subject (what the form acts on); "" without a binding.
func (c CSRF) Token(binding, subject string) string {
	if binding == "" {
		return ""
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(binding + "\x00" + subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Valid compares got with the token in constant time.
func (c CSRF) Valid(binding, subject, got string) bool {
	want := c.Token(binding, subject)
	return want != "" && hmac.Equal([]byte(got), []byte(want))
}

// Cookies sets the pages' cookies: HttpOnly, SameSite=Lax (sent on the
// top-level navigation back from a messenger app or a site, never to a
// cross-site subrequest), Secure when the public URL is https, the whole
// origin as path.
type Cookies struct{ Secure bool }

// Set sets name for ttl.
func (c Cookies) Set(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// Clear deletes name.
func (c Cookies) Clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode})
}

// QRModulePixels is how many pixels wide one QR module is drawn. The
// page scales the image up with crisp edges (CSS image-rendering), so a
// small PNG is enough; drawing it at the displayed size cost most of a
// page render.
const QRModulePixels = 2

// pngBuffers reuses the PNG encoder's compressor (about a megabyte each)
// between pages.
var pngBuffers = &pngPool{}

type pngPool struct{ p sync.Pool }

func (pp *pngPool) Get() *png.EncoderBuffer {
	b, _ := pp.p.Get().(*png.EncoderBuffer)
	return b
}

func (pp *pngPool) Put(b *png.EncoderBuffer) { pp.p.Put(b) }

// QRDataURI is a PNG QR code of link (with its quiet zone) as a data: URI
// (the CSP allows data: images); html/template would otherwise replace it
// as an unsafe URL.
func QRDataURI(link string) (template.URL, error) {
	var b bytes.Buffer
	b.WriteString("data:image/png;base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &b)
	if err := writeQR(enc, link, func(int) int { return QRModulePixels }); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return template.URL(b.String()), nil
}

// QRPNG is a PNG QR code of link (with its quiet zone) close to side
// pixels wide, never wider unless one pixel per module already is: every
// module is the same whole number of pixels, so a camera or a decoder
// finds an even grid at any size the image is shown.
func QRPNG(link string, side int) ([]byte, error) {
	var b bytes.Buffer
	err := writeQR(&b, link, func(modules int) int { return max(1, side/modules) })
	return b.Bytes(), err
}

// writeQR draws link's QR code, medium error correction, with the
// module size px picks for the code's width in modules (quiet zone
// included), and writes it to w as a two-colour PNG.
func writeQR(w io.Writer, link string, px func(modules int) int) error {
	q, err := qrcode.New(link, qrcode.Medium)
	if err != nil {
		return err
	}
	bm := q.Bitmap()
	n := px(len(bm))
	side := len(bm) * n
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	for y, row := range bm {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range n {
				off := (y*n+dy)*img.Stride + x*n
				for dx := range n {
					img.Pix[off+dx] = 1
				}
			}
		}
	}
	return (&png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: pngBuffers}).Encode(w, img)
}

// Assets serves the pages' scripts and style sheets by base name from
// read (templates.PageAsset); nothing else.
func Assets(read func(name string) ([]byte, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Base(r.URL.Path)
		var ctype string
		switch {
		case strings.HasSuffix(name, ".js"):
			ctype = "text/javascript; charset=utf-8"
		case strings.HasSuffix(name, ".css"):
			ctype = "text/css; charset=utf-8"
		}
		if read == nil || ctype == "" {
			http.NotFound(w, r)
			return
		}
		b, err := read(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	})
}
