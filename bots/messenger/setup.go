package messenger

import (
	"context"
	"fmt"

	"golang.org/x/text/language"
)

// Messenger Profile API limits.
const (
	maxGreetingRunes  = 160
	maxMenuTitleRunes = 30
)

type messengerProfile struct {
	GetStarted     map[string]string `json:"get_started"`
	Greeting       []greeting        `json:"greeting"`
	PersistentMenu []persistentMenu  `json:"persistent_menu"`
}

type greeting struct {
	Locale string `json:"locale"`
	Text   string `json:"text"`
}

type persistentMenu struct {
	Locale                string   `json:"locale"`
	ComposerInputDisabled bool     `json:"composer_input_disabled"`
	CallToActions         []button `json:"call_to_actions"`
}

// SetupProfile sets the Page's Get Started button, greeting and persistent
// menu (Link account, Log out, Status) in every shipped language, through
// the Messenger Profile API (`pairingd messenger setup --channel NAME`).
func (h *Hub) SetupProfile(ctx context.Context, pageName string) error {
	p, ok := h.byName[pageName]
	if !ok {
		return fmt.Errorf("messenger: no page named %q", pageName)
	}
	if err := p.graph.setMessengerProfile(ctx, h.profileFor(p)); err != nil {
		return fmt.Errorf("messenger page %q: set messenger profile: %w", pageName, err)
	}
	return nil
}

// profileFor builds the profile: the "default" locale in the Page's
// fallback language, then one entry per shipped locale under Meta's
// locale name (ru -> ru_RU, zh-TW -> zh_TW).
func (h *Hub) profileFor(p *page) messengerProfile {
	prof := messengerProfile{GetStarted: map[string]string{"payload": payloadGetStarted}}
	add := func(fbLocale, loc string) {
		prof.Greeting = append(prof.Greeting, greeting{Locale: fbLocale, Text: clipRunes(h.text(loc, "messenger_greeting", nil), maxGreetingRunes)})
		prof.PersistentMenu = append(prof.PersistentMenu, persistentMenu{Locale: fbLocale, CallToActions: []button{
			{Type: "postback", Title: clipRunes(h.text(loc, "messenger_menu_link", nil), maxMenuTitleRunes), Payload: payloadLink},
			{Type: "postback", Title: clipRunes(h.text(loc, "messenger_menu_logout", nil), maxMenuTitleRunes), Payload: payloadUnlink},
			{Type: "postback", Title: clipRunes(h.text(loc, "messenger_menu_status", nil), maxMenuTitleRunes), Payload: payloadStatus},
		}})
	}
	add("default", p.cfg.FallbackLocale)
	seen := map[string]bool{}
	for _, loc := range h.texts.Locales() {
		fb := facebookLocale(loc)
		if fb == "" || seen[fb] {
			continue
		}
		seen[fb] = true
		add(fb, loc)
	}
	return prof
}

// facebookLocale names a catalog locale the way Meta does: language_REGION
// with the most likely region ("en" -> "en_US", "zh-TW" -> "zh_TW").
func facebookLocale(loc string) string {
	tag, err := language.Parse(loc)
	if err != nil {
		return ""
	}
	base, _ := tag.Base()
	region, conf := tag.Region()
	if conf == language.No {
		return ""
	}
	return base.String() + "_" + region.String()
}
