package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The headless Chromium (chromedp) both browser tests drive: the OIDC
// sign-in pages (e2e_browser_test.go) and the demo
// (e2e_demo_browser_test.go). Screenshots of the pages go to
// PAIRING_SCREENSHOTS (a temporary directory when unset; never
// committed).

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

// view is a screen the pages must work on, the language the browser asks
// for (Accept-Language) and whether it runs scripts.
type view struct {
	name          string
	width, height int64
	mobile        bool
	lang          string
	noScript      bool
}

var (
	phone   = view{name: "phone", width: 390, height: 844, mobile: true, lang: "en"}
	desktop = view{name: "desktop", width: 1280, height: 800, lang: "en"}
)

// in is v asking for lang instead.
func (v view) in(lang string) view {
	v.lang = lang
	return v
}

// chromium is one headless Chromium with a fresh user-data-dir; each tab
// it opens has a profile of its own (no cookies shared).
type chromium struct {
	root   context.Context
	shots  string
	prefix string // of every screenshot's file name
}

// newChromium starts Chromium for t; the screenshots it takes are named
// prefix<name>-<view>.png.
func newChromium(t *testing.T, prefix string) *chromium {
	t.Helper()
	bin := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-features", "Translate"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	if err := chromedp.Do(root); err != nil { // starts the browser, without a deadline
		t.Fatalf("chromium did not start: %v", err)
	}
	shots := os.Getenv("PAIRING_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &chromium{root: root, shots: shots, prefix: prefix}
}

// tab is one browser tab in a browser context (cookies) of its own.
type tab struct {
	t   *testing.T
	c   *chromium
	ctx context.Context
	v   view
}

// tab opens a tab for t (which may be a subtest of the one that started
// Chromium) at v's size, language and script setting.
func (c *chromium) tab(t *testing.T, v view) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	vopts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if v.mobile {
		vopts = append(vopts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(v.width, v.height, vopts...),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": v.lang}})
			return err
		}),
	}
	if v.noScript {
		steps = append(steps, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("tab setup: %v", err)
	}
	return &tab{t: t, c: c, ctx: ctx, v: v}
}

// do runs steps within 30 s; on failure it says where the tab is and
// what the page shows.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		show, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(show, chromedp.Location())
		body, _ := chromedp.Run(show, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
	}
}

// open navigates and waits for sel.
func (b *tab) open(url, sel string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click clicks sel and waits for then, a selector only the next page has.
func (b *tab) click(sel, then string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(then)))
}

// press clicks sel, which sends a form and leaves the page, and waits
// until the next page (without sel) shows then.
func (b *tab) press(sel, then string) {
	b.t.Helper()
	b.do("press "+sel, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitNotPresent(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(then)))
}

// attr reads an attribute sel must have, within 30 s (waiting unbounded
// for an element that never comes once hung CI).
func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	a, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil || !a.Exists {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return a.Value
}

// text is sel's text as shown (innerText), without leading and trailing
// space.
func (b *tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// waitText waits until sel's text contains want; the page changes by
// itself (its script), nobody reloads it.
func (b *tab) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Each read is bounded too: chromedp waits for a missing selector,
		// and the deadline below could not end that wait.
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			b.t.Fatalf("%s never showed %q at %s; it shows:\n%s", sel, want, loc, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// has tells whether the page has sel now (no waiting).
func (b *tab) has(sel string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`))
	if err != nil {
		b.t.Fatalf("query %s: %v", sel, err)
	}
	return ok
}

// count is how many elements match sel now (no waiting).
func (b *tab) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
	if err != nil {
		b.t.Fatalf("query %s: %v", sel, err)
	}
	return n
}

func (b *tab) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// shot captures the whole page as <prefix><name>-<view>.png in the
// screenshot directory and checks that the image has the screen's width
// (the page is no wider than the screen: nothing to scroll sideways).
// The file is written first, so a page too wide can be looked at.
func (b *tab) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.c.shots, b.c.prefix+name+"-"+b.v.name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if w := int64(img.Bounds().Dx()); w != b.v.width {
		b.t.Fatalf("screenshot %s: width %d (screen %d): the page is wider than the screen", name, w, b.v.width)
	}
}
