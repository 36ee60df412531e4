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
// They are base64url after the prefix: 43 characters or more.
var bearerTokenRE = regexp.MustCompile(`\b(?:pdl|psi|pgr|pdk)_[A-Za-z0-9_-]{20,128}`)

// sealedPrefix starts a sealed token in a stored payload.
const sealedPrefix = "pzs_"

var sealedTokenRE = regexp.MustCompile(`\b` + sealedPrefix + `[A-Za-z0-9_-]{40,400}`)

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
	if !bearerTokenRE.Match(payload) {
		return payload, nil
	}
	var err error
	out := bearerTokenRE.ReplaceAllFunc(payload, func(tok []byte) []byte {
		nonce := make([]byte, t.aead.NonceSize())
		if _, e := io.ReadFull(t.rand, nonce); e != nil {
			err = e
			return nil
		}
		ct := t.aead.Seal(nonce, nonce, tok, nil)
		return []byte(sealedPrefix + base64.RawURLEncoding.EncodeToString(ct))
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
	if !sealedTokenRE.Match(payload) {
		return payload
	}
	return sealedTokenRE.ReplaceAllFunc(payload, func(s []byte) []byte {
		ct, err := base64.RawURLEncoding.DecodeString(string(s[len(sealedPrefix):]))
		if err != nil || len(ct) < t.aead.NonceSize() {
			return s
		}
		n := t.aead.NonceSize()
		tok, err := t.aead.Open(nil, ct[:n], ct[n:], nil)
		if err != nil {
			return s
		}
		return tok
	})
}
