package pairing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
)

// Platform payloads carry pairingd's bearer tokens back to it: a deep link
// arrives as Telegram's `/start <token>` or Messenger's referral ref, and
// the Confirm and Cancel buttons the bot sends carry the token in their
// callback data or quick-reply payload, which come back in later updates
// (with the question's message, buttons and all). The inbound queue keeps
// payloads for 48 hours, so it must not keep those tokens usable: every
// token in a payload is sealed (AES-256-GCM under a key derived from the
// server secret, which is not in the database) when the event is stored,
// and opened again just before its handler runs. A copy of the database
// alone yields no token; the handlers see the payload as the platform
// sent it.
//
// Tokens are found by their prefix, wherever they are in the payload, so
// no adapter has to name the fields that carry them; a token-like string
// that is not a live token is sealed and opened like any other, with no
// effect on its meaning.

// bearerTokenRE matches pairingd's bearer tokens: a deep-link token, a
// sign-in token, a grant, an API key (people paste anything into a chat).
// They are base64url after the prefix: 43 characters or more. A match
// counts only when it is a whole run of token characters (none right
// before or after it), so nothing inside a longer run, a sealed token
// included, is taken for one.
var bearerTokenRE = regexp.MustCompile(`(?:pdl|psi|pgr|pdk)_[A-Za-z0-9_-]{20,128}`)

// sealedPrefix starts a sealed token in a stored payload.
const sealedPrefix = "pzs_"

var sealedTokenRE = regexp.MustCompile(sealedPrefix + `[A-Za-z0-9_-]{40,400}`)

// tokenChar tells whether b may be part of a token (base64url and '_').
func tokenChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// replaceTokens replaces every match of re in b that is a whole run of
// token characters by fn of it; it returns b itself when nothing is replaced.
func replaceTokens(b []byte, re *regexp.Regexp, fn func([]byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	last := 0
	for _, m := range re.FindAllIndex(b, -1) {
		if m[0] > 0 && tokenChar(b[m[0]-1]) || m[1] < len(b) && tokenChar(b[m[1]]) {
			continue // inside a longer run: not a whole token
		}
		r, err := fn(b[m[0]:m[1]])
		if err != nil {
			return nil, err
		}
		out = append(append(out, b[last:m[0]]...), r...)
		last = m[1]
	}
	if out == nil {
		return b, nil
	}
	return append(out, b[last:]...), nil
}

// InboundSealKey derives the key that seals tokens in stored inbound
// payloads from the server secret, so every instance (and the next start)
// can open what another stored.
func InboundSealKey(serverSecret []byte) []byte {
	m := hmac.New(sha256.New, serverSecret)
	m.Write([]byte("pairingd inbound payload token seal v1"))
	return m.Sum(nil)
}

// tokenSeal seals and opens tokens in payloads.
type tokenSeal struct {
	aead cipher.AEAD
	rand io.Reader
}

// newTokenSeal makes the AES-256 key from key (any length: it is hashed).
func newTokenSeal(key []byte, r io.Reader) *tokenSeal {
	k := sha256.Sum256(key)
	block, err := aes.NewCipher(k[:])
	if err != nil { // a 32-byte key is always valid
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil { // AES has GCM's block size
		panic(err)
	}
	return &tokenSeal{aead: aead, rand: r}
}

// seal replaces every bearer token in payload by its sealed form. It
// returns payload itself when there is none.
func (t *tokenSeal) seal(payload []byte) ([]byte, error) {
	out, err := replaceTokens(payload, bearerTokenRE, func(tok []byte) ([]byte, error) {
		nonce := make([]byte, t.aead.NonceSize())
		if _, err := io.ReadFull(t.rand, nonce); err != nil {
			return nil, err
		}
		ct := t.aead.Seal(nonce, nonce, tok, nil)
		return []byte(sealedPrefix + base64.RawURLEncoding.EncodeToString(ct)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal tokens of an inbound payload: %w", err)
	}
	return out, nil
}

// open puts the tokens back. A sealed form that does not open (another
// secret, or text that only looks sealed) is left as it is: to a handler
// it is an unknown token.
func (t *tokenSeal) open(payload []byte) []byte {
	out, _ := replaceTokens(payload, sealedTokenRE, func(s []byte) ([]byte, error) {
		ct, err := base64.RawURLEncoding.DecodeString(string(s[len(sealedPrefix):]))
		n := t.aead.NonceSize()
		if err != nil || len(ct) < n {
			return s, nil
		}
		tok, err := t.aead.Open(nil, ct[:n], ct[n:], nil)
		if err != nil {
			return s, nil
		}
		return tok, nil
	})
	return out
}
