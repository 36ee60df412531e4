package messenger

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/templates"
)

func TestSetupProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.hub.SetupProfile(e.ctx, "fb-news"); err != nil {
		t.Fatal(err)
	}
	profiles := e.fb.MessengerProfiles()
	if len(profiles) != 1 {
		t.Fatalf("profiles %d", len(profiles))
	}
	var got messengerProfile
	if err := json.Unmarshal(profiles[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.GetStarted["payload"] != payloadGetStarted {
		t.Fatalf("get started %+v", got.GetStarted)
	}
	locales := map[string]persistentMenu{}
	for _, m := range got.PersistentMenu {
		locales[m.Locale] = m
		if len(m.CallToActions) != 3 || m.CallToActions[0].Payload != payloadLink || m.CallToActions[1].Payload != payloadUnlink ||
			m.CallToActions[2].Payload != payloadStatus {
			t.Fatalf("menu %+v", m)
		}
		for _, b := range m.CallToActions {
			if b.Type != "postback" || b.Title == "" || utf8.RuneCountInString(b.Title) > maxMenuTitleRunes {
				t.Fatalf("menu item %+v", b)
			}
		}
	}
	for _, want := range []string{"default", "en_US", "ru_RU", "fr_FR", "zh_TW"} {
		if _, ok := locales[want]; !ok {
			t.Errorf("no menu for %s (have %v)", want, got.PersistentMenu)
		}
	}
	// Page B's fallback is French: the default entry speaks French.
	if locales["default"].CallToActions[0].Title != e.text("fr", "messenger_menu_link") {
		t.Fatalf("default menu %+v", locales["default"])
	}
	if len(got.Greeting) != len(got.PersistentMenu) || got.Greeting[0].Locale != "default" || utf8.RuneCountInString(got.Greeting[0].Text) > maxGreetingRunes {
		t.Fatalf("greeting %+v", got.Greeting)
	}
	if err := e.hub.SetupProfile(e.ctx, "nope"); err == nil {
		t.Fatal("unknown page accepted")
	}
	e.fb.FailNextOn(fbfake.EndpointMessengerProfile, 100, 0)
	if err := e.hub.SetupProfile(e.ctx, "fb-shop"); err == nil || !strings.Contains(err.Error(), "fb-shop") {
		t.Fatalf("graph refusal: %v", err)
	}
}

// Every locale ships every Messenger text, and each renders.
func TestTextsComplete(t *testing.T) {
	t.Parallel()
	c, err := templates.Load("", "en")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range c.Keys("en") {
		if strings.HasPrefix(k, "messenger_") {
			keys = append(keys, k)
		}
	}
	if len(keys) < 25 {
		t.Fatalf("only %d messenger keys", len(keys))
	}
	data := map[string]any{"PIN": "123456", "Minutes": 10, "Seconds": 5, "Name": "Ann", "Site": "Shop", "Code": "AB12"}
	for _, loc := range []string{"en", "ru", "fr", "zh-TW"} {
		have := map[string]bool{}
		for _, k := range c.Keys(loc) {
			have[k] = true
		}
		for _, k := range keys {
			if !have[k] {
				t.Errorf("%s lacks %s", loc, k)
				continue
			}
			out := c.Text(loc, k, data)
			if out == "" || strings.HasPrefix(out, "[") {
				t.Errorf("%s/%s renders %q", loc, k, out)
			}
			if strings.HasSuffix(k, "_button") || strings.HasPrefix(k, "messenger_menu_") || strings.HasPrefix(k, "messenger_unlink_yes") || strings.HasPrefix(k, "messenger_unlink_no") {
				if utf8.RuneCountInString(out) > maxTitleRunes {
					t.Errorf("%s/%s is longer than a button title: %q", loc, k, out)
				}
			}
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	good := PageConfig{Name: "fb", PageID: "1", PageAccessToken: "t", AppSecret: "s", VerifyToken: "v"}
	mod := func(f func(*PageConfig)) Config {
		p := good
		f(&p)
		return Config{Pages: []PageConfig{p}}
	}
	if err := (Config{Pages: []PageConfig{good}}).validate(); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"no pages":       {},
		"bad name":       mod(func(p *PageConfig) { p.Name = "Bad Name" }),
		"page id":        mod(func(p *PageConfig) { p.PageID = "abc" }),
		"no token":       mod(func(p *PageConfig) { p.PageAccessToken = "" }),
		"no secret":      mod(func(p *PageConfig) { p.AppSecret = "" }),
		"no verify":      mod(func(p *PageConfig) { p.VerifyToken = "" }),
		"role":           mod(func(p *PageConfig) { p.Role = "boss" }),
		"secondary":      mod(func(p *PageConfig) { p.Role = RoleSecondary }),
		"graph url":      mod(func(p *PageConfig) { p.GraphURL = "ftp://x" }),
		"tag":            mod(func(p *PageConfig) { p.MessageTag = "lower" }),
		"login url":      mod(func(p *PageConfig) { p.LoginURL = "/login" }),
		"target app":     mod(func(p *PageConfig) { p.TargetAppID = "x" }),
		"duplicate":      {Pages: []PageConfig{good, good}},
		"redirect host":  {Pages: []PageConfig{good}, AllowedRedirectHosts: []string{"https://x/"}},
		"handle timeout": {Pages: []PageConfig{good}, HandleTimeout: 30e9},
	} {
		if err := cfg.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
