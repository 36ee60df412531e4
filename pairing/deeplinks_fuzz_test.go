package pairing_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/pairingd/pairingd/pairing"
)

// FuzzDeepLinkInput: whatever a site or a chat sends, a display name that
// passes is short, valid and free of control characters, normalizing is
// idempotent, and a plausible token is within Telegram's start parameter.
func FuzzDeepLinkInput(f *testing.F) {
	for _, s := range []string{"", "Ann", "  Ann  ", "Ann\nBob", "Ann\u202e", "\xff", strings.Repeat("é", 64), "pdl_" + strings.Repeat("A", 43), "pdl_a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if name, err := pairing.NormalizeDisplayName(s); err == nil {
			if !utf8.ValidString(name) || utf8.RuneCountInString(name) > pairing.MaxDisplayNameRunes || strings.TrimSpace(name) != name {
				t.Fatalf("accepted %q as %q", s, name)
			}
			for _, r := range name {
				if unicode.IsControl(r) {
					t.Fatalf("control character in %q", name)
				}
			}
			if again, err := pairing.NormalizeDisplayName(name); err != nil || again != name {
				t.Fatalf("not idempotent: %q -> %q %v", name, again, err)
			}
		}
		if pairing.PlausibleLinkToken(s) {
			if len(s) > 64 || !strings.HasPrefix(s, "pdl_") || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
				t.Fatalf("plausible: %q", s)
			}
		}
	})
}
