package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.org/x/oauth2"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// chromiumPath finds headless Chromium; under CI=true its absence fails
// the test instead of skipping it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("PAIRING_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing (CI=true): apt-get install -y chromium")
	}
	t.Skip("chromium not installed")
	return ""
}

// chromium loads url in a fresh profile at width x height and returns the
// DOM after scripts ran; with shot set it also writes a screenshot.
func chromium(t *testing.T, bin, url string, width, height int, lang string, js bool, shot string) string {
	t.Helper()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--lang=" + lang, "--accept-lang=" + lang,
		"--window-size=" + itoa(width) + "," + itoa(height), "--virtual-time-budget=3000"}
	if !js {
		args = append(args, "--blink-settings=scriptEnabled=false")
	}
	if shot != "" {
		args = append(args, "--screenshot="+shot)
	} else {
		args = append(args, "--dump-dom")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v", url, err)
	}
	return out.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

var qrSrc = regexp.MustCompile(`src="data:image/png;base64,([A-Za-z0-9+/=]+)"`)

// TestBrowserSignInPages drives the hosted page in headless Chromium: phone
// and desktop widths, Russian, JavaScript off (the Continue link), and the
// QR code decoding to the same deep link the button opens. Screenshots go
// to PAIRING_SCREENSHOTS (never committed) when set.
func TestBrowserSignInPages(t *testing.T) {
	bin := chromiumPath(t)
	tg := tgfake.New(t, "123456:AAE-secret-token-part")
	dir := t.TempDir()
	listen, issuer := oidcIssuer(t)
	env := telegramEnv(dir, tg, oidcEnv(listen, issuer)...)
	rp := createOIDCClient(t, dir, env)
	in := start(t, dir, env)
	defer in.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitBotStarted(ctx, t, in, tg)
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: rp.ClientID, ClientSecret: rp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID}}
	// pageURL starts a sign-in and returns its page, not yet opened (the
	// browser that opens it first owns it).
	pageURL := func() string {
		st, loc, _ := newBrowser(t).get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if st != 302 {
			t.Fatalf("authorize: %d", st)
		}
		return issuer + loc
	}
	shots := os.Getenv("PAIRING_SCREENSHOTS")
	for _, tc := range []struct {
		name          string
		width, height int
		lang          string
		js            bool
		want          string
	}{
		{"phone", 390, 844, "en", true, "Open Telegram"},
		{"desktop", 1280, 800, "en", true, "Open Telegram"},
		{"ru", 390, 844, "ru", true, "Открыть Telegram"},
		{"nojs", 1280, 800, "ru", false, "Открыть Telegram"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dom string
			if tc.js {
				dom = chromium(t, bin, pageURL(), tc.width, tc.height, tc.lang, true, "")
			} else {
				// Chromium's --dump-dom reads the DOM with script, so
				// with scripts off it prints nothing: the markup checked
				// is what a browser without script is sent (it shows it
				// as sent), and Chromium still renders it with scripts off.
				dom = pageWithoutScript(t, pageURL(), tc.lang)
				chromium(t, bin, pageURL(), tc.width, tc.height, tc.lang, false, filepath.Join(t.TempDir(), "nojs.png"))
			}
			if !strings.Contains(dom, tc.want) || !strings.Contains(dom, `id="continue"`) {
				t.Fatalf("page in %s lacks %q or the Continue link:\n%s", tc.lang, tc.want, dom)
			}
			link := tgSignInLink.FindString(dom)
			m := qrSrc.FindStringSubmatch(dom)
			if link == "" || m == nil {
				t.Fatalf("no deep link or QR code:\n%s", dom)
			}
			if got := decodeQR(t, m[1]); got != strings.ReplaceAll(link, "&amp;", "&") {
				t.Fatalf("QR code says %q, the button %q", got, link)
			}
			if shots != "" {
				chromium(t, bin, pageURL(), tc.width, tc.height, tc.lang, tc.js, filepath.Join(shots, tc.name+".png"))
			}
		})
	}
	if shots != "" {
		chromium(t, bin, issuer+"/signin/unknown-request", 390, 844, "ru", true, filepath.Join(shots, "expired-ru.png"))
	}
}

// pageWithoutScript is the sign-in page as a browser that runs no script
// gets it: one GET with the browser's language, the cookie kept, the
// markup's entities decoded as the browser's parser does.
func pageWithoutScript(t *testing.T, url, lang string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", lang)
	resp, err := (&http.Client{Jar: jar, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, body)
	}
	// The entities a browser decodes (html/template writes "+" as &#43;).
	return html.UnescapeString(string(body))
}

func decodeQR(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("QR code does not decode: %v", err)
	}
	return res.GetText()
}
