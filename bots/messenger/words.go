package messenger

import (
	"slices"
	"strings"

	"github.com/pairingd/pairingd/templates"
)

// --- chat words ---

// Actions a person can ask for, as postback and quick reply payloads.
const (
	payloadGetStarted    = "GET_STARTED"
	payloadLink          = "LINK_ACCOUNT"
	payloadUnlink        = "UNLINK"
	payloadUnlinkConfirm = "UNLINK_CONFIRM"
	payloadUnlinkCancel  = "UNLINK_CANCEL"
	payloadStatus        = "STATUS"
	payloadHelp          = "HELP"
)

// wordKeys are the template keys listing each action's chat words, comma
// separated, per locale.
var wordKeys = map[string]string{
	"messenger_words_login":  payloadLink,
	"messenger_words_logout": payloadUnlink,
	"messenger_words_status": payloadStatus,
	"messenger_words_help":   payloadHelp,
}

// loadWords collects the command words of every locale; the English words
// always work.
func loadWords(texts *templates.Catalog) map[string]string {
	words := map[string]string{
		"login": payloadLink, "link": payloadLink, "logout": payloadUnlink, "unlink": payloadUnlink,
		"status": payloadStatus, "help": payloadHelp, "start": payloadHelp,
	}
	for _, loc := range texts.Locales() {
		for key, action := range wordKeys {
			if !slices.Contains(texts.Keys(loc), key) {
				continue
			}
			for _, w := range strings.Split(texts.Text(loc, key, nil), ",") {
				if w = normalizeWord(w); w != "" {
					words[w] = action
				}
			}
		}
	}
	return words
}

// normalizeWord is how chat text is compared with command words: trimmed,
// lower case, without a leading slash, inner spaces collapsed.
func normalizeWord(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "/")
	return strings.Join(strings.Fields(s), " ")
}
