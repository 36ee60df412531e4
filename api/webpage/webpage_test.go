package webpage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
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

func TestQRDataURIDecodes(t *testing.T) {
	link := "https://t.me/pairing_test_bot?start=psi_abcDEF-_0123456789"
	u, err := QRDataURI(link)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(string(u), "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URI: %.40s", u)
	}
	img, err := png.Decode(base64Reader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	// The image is the code and its quiet zone only: read it as a pure
	// barcode, which is exact at any scale. The finder-pattern search,
	// the fallback, misreads about 1 in 125 scaled-up codes (seen as a
	// CI failure; measured over 1,500 random links).
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		res, err = qrcode.NewQRCodeReader().Decode(bmp, nil)
	}
	if err != nil || res.GetText() != link {
		t.Fatalf("decoded %v, %v", res, err)
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

func base64Reader(s string) *bytes.Reader {
	b, _ := base64Decode(s)
	return bytes.NewReader(b)
}

var base64Decode = base64.StdEncoding.DecodeString
