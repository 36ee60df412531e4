package webpage

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/api/webpage/webpagetest"
)

func TestRenderHeadersAndCSP(t *testing.T) {
	pages := template.Must(template.New("p").Parse(`{{define "ok.html"}}<p>{{.}}</p>{{end}}{{define "bad.html"}}{{.Missing}}{{end}}`))
	r := Renderer{Pages: pages}
	w := httptest.NewRecorder()
	r.Render(w, http.StatusTeapot, "ok.html", "fr", "<b>", Origin("https://shop.example/cb?x=1"), Origin("javascript:alert(1)"))
	h := w.Result().Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self';", "default-src 'none'", "form-action 'self' https://shop.example;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "javascript") {
		t.Errorf("CSP allows inline script: %q", csp)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "Content-Language": "fr", "Content-Type": "text/html; charset=utf-8"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if w.Code != http.StatusTeapot || w.Body.String() != "<p>&lt;b&gt;</p>" {
		t.Errorf("answer %d %q", w.Code, w.Body.String())
	}

	// A failing template sends no half page.
	w = httptest.NewRecorder()
	r.Render(w, http.StatusOK, "bad.html", "en", 42)
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "<p>") || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("failed template: %d %q", w.Code, w.Body.String())
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://shop.example/cb":      "https://shop.example",
		"http://127.0.0.1:9/callback":  "http://127.0.0.1:9",
		"com.example.app:/oauth2redir": "com.example.app:",
		"javascript:alert(1)":          "",
		"data:text/html,hi":            "",
		"/relative":                    "",
		"https:///no-host":             "",
		"mailto:someone@example.com":   "",
	} {
		if got := Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSRF(t *testing.T) {
	c := NewCSRF([]byte("key-0123456789abcdef0123456789ab"))
	tok := c.Token("browser-a", "request-1")
	if len(tok) < 43 || !c.Valid("browser-a", "request-1", tok) {
		t.Fatalf("token %q not valid for its browser and request", tok)
	}
	for _, bad := range []struct{ binding, subject, got string }{
		{"browser-b", "request-1", tok},
		{"browser-a", "request-2", tok},
		{"browser-a", "request-1", ""},
		{"", "request-1", c.Token("", "request-1")},
		{"browser-a", "request-1", tok[:len(tok)-1]},
	} {
		if c.Valid(bad.binding, bad.subject, bad.got) {
			t.Errorf("accepted %+v", bad)
		}
	}
	if NewCSRF([]byte("another key, another instance set")).Valid("browser-a", "request-1", tok) {
		t.Error("a token of another key was accepted")
	}
}

func TestLocalesPick(t *testing.T) {
	l, err := NewLocales([]string{"en", "ru", "fr", "zh-TW"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		accept    string
		preferred []string
		want      string
	}{
		{"", nil, "en"},
		{"ru-RU,ru;q=0.9,en;q=0.5", nil, "ru"},
		{"fr-CA", nil, "fr"},
		{"zh-Hant-TW", nil, "zh-TW"},
		{"de-DE", nil, "en"},
		{"ru", []string{"fr"}, "fr"},
		{"ru", []string{"not a tag!"}, "ru"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", c.accept)
		if got := l.Pick(r, c.preferred...); got != c.want {
			t.Errorf("Pick(%q, %v) = %q, want %q", c.accept, c.preferred, got, c.want)
		}
	}
	if _, err := NewLocales(nil); err == nil {
		t.Error("no locales accepted")
	}
}

func TestCookieFlags(t *testing.T) {
	for _, secure := range []bool{false, true} {
		w := httptest.NewRecorder()
		Cookies{Secure: secure}.Set(w, "n", "v", 90)
		c := w.Result().Cookies()[0]
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure || c.Path != "/" {
			t.Errorf("cookie %+v (secure %v)", c, secure)
		}
	}
}

// TestQRCodesAreEvenGrids: both drawings of a QR code (the pages'
// data: URI and the API's PNG near a given width) read back exactly as a
// pure barcode, every module the same whole number of pixels, for links
// of each shape the service draws. The API's PNG was once scaled to 320
// px with uneven modules: none of those read as pure barcodes, and the
// finder-pattern search misread about 1 in 125 of them.
func TestQRCodesAreEvenGrids(t *testing.T) {
	for i := range 200 {
		tok := make([]byte, 32)
		rand.Read(tok)
		link := fmt.Sprintf("http://127.0.0.1:%d/example_shop_bot?start=pdl_%s", 20000+97*i, base64.RawURLEncoding.EncodeToString(tok))
		if i%2 == 1 {
			link = "https://t.me/pairing_test_bot?start=psi_" + base64.RawURLEncoding.EncodeToString(tok[:24])
		}

		u, err := QRDataURI(link)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := strings.CutPrefix(string(u), "data:image/png;base64,")
		if !ok {
			t.Fatalf("not a PNG data URI: %.40s", u)
		}
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			t.Fatal(err)
		}
		checkQR(t, b, link, 0)

		if b, err = QRPNG(link, 320); err != nil {
			t.Fatal(err)
		}
		checkQR(t, b, link, 320)
	}
}

// checkQR: b reads back as link, and is at most side pixels wide (when
// side is not 0) but no narrower than a module less.
func checkQR(t *testing.T, b []byte, link string, side int) {
	t.Helper()
	got, err := webpagetest.ReadQR(b)
	if err != nil || got != link {
		t.Fatalf("%s: read %q, %v", link, got, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if side != 0 && (cfg.Width > side || cfg.Width < side*9/10) {
		t.Fatalf("%s: %d pixels wide, asked for %d", link, cfg.Width, side)
	}
}

func TestAssets(t *testing.T) {
	h := Assets(func(name string) ([]byte, error) {
		if name == "a.js" || name == "a.css" || name == "a.html" {
			return []byte("x"), nil
		}
		return nil, errors.New("no such asset")
	})
	for path, want := range map[string]int{"/assets/a.js": 200, "/assets/a.css": 200, "/assets/a.html": 404, "/assets/b.js": 404, "/assets/../a.js": 200} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}
