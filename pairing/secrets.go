package pairing

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sqids/sqids-go"
	"golang.org/x/text/unicode/norm"
)

// maxBUIDLen bounds what the decoder looks at: a real BUID is about 30
// characters.
const maxBUIDLen = 64

// buidCodec turns (row id, 128 random bits) into a URL-safe BUID and back.
// Sqids is only an encoding: a decoded BUID is trusted only after the hash of
// its random part matches the row.
type buidCodec struct {
	sq *sqids.Sqids
	// legacy is the encoding with sqids' default blocklist, which BUIDs
	// issued before pairingd 0.2 used (a nil Blocklist means the default
	// list): such a BUID still decodes while its PIN lives.
	legacy *sqids.Sqids
}

func newBUIDCodec() (*buidCodec, error) {
	// No blocklist (an empty, non-nil list: nil means sqids' default): a
	// BUID is a random token, not a word anyone reads, and the blocklist
	// check cost more than the rest of the codec (profiled).
	sq, err := sqids.New(sqids.Options{Blocklist: []string{}})
	if err != nil {
		return nil, fmt.Errorf("sqids: %w", err)
	}
	legacy, err := sqids.New(sqids.Options{})
	if err != nil {
		return nil, fmt.Errorf("sqids: %w", err)
	}
	return &buidCodec{sq: sq, legacy: legacy}, nil
}

// encode makes the BUID for a row and a 16-byte secret.
func (c *buidCodec) encode(rowID int64, secret []byte) (string, error) {
	if rowID <= 0 || len(secret) != 16 {
		return "", fmt.Errorf("buid: bad input")
	}
	return c.sq.Encode([]uint64{uint64(rowID), binary.BigEndian.Uint64(secret[:8]), binary.BigEndian.Uint64(secret[8:])})
}

// decode returns the row id and the 16-byte secret of a BUID, or ok=false
// for anything that is not a canonical BUID.
func (c *buidCodec) decode(buid string) (rowID int64, secret []byte, ok bool) {
	if buid == "" || len(buid) > maxBUIDLen {
		return 0, nil, false
	}
	for i := 0; i < len(buid); i++ {
		b := buid[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9') {
			return 0, nil, false
		}
	}
	nums := c.sq.Decode(buid)
	if len(nums) != 3 || nums[0] == 0 || nums[0] > 1<<62 {
		return 0, nil, false
	}
	// Several strings can decode to the same numbers; only the one we
	// would issue is accepted.
	if canon, err := c.sq.Encode(nums); err != nil || canon != buid {
		// BUIDs issued by an earlier release are still live, and their
		// encoding differs when the default blocklist re-encoded them.
		if old, err := c.legacy.Encode(nums); err != nil || old != buid {
			return 0, nil, false
		}
	}
	secret = make([]byte, 16)
	binary.BigEndian.PutUint64(secret[:8], nums[1])
	binary.BigEndian.PutUint64(secret[8:], nums[2])
	return int64(nums[0]), secret, true
}

// randomBytes reads n bytes from r.
func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}

// randomToken returns prefix + 32 random bytes in unpadded base64url (43
// characters, 256 bits), which Telegram's start parameter accepts.
func randomToken(r io.Reader, prefix string) (string, error) {
	b, err := randomBytes(r, 32)
	if err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// A grant token is grantPrefix + unpadded base64url of an 8-byte order
// key (the issue time in nanoseconds, big-endian) followed by 32 random
// bytes: 54 characters, 256 bits of secret. It is stored as the order key
// followed by the token's SHA-256, so new grants land at the end of the
// unique index on grants.hash instead of at a random page of it: one
// page fewer written per register or conflict answer, which matters on
// SQLite, whose writer commits every page a transaction dirtied (measured
// in docs/performance.md).
// Only the SHA-256 half is secret; the order key tells the holder when
// the grant was issued, which grant_expires_at tells it anyway.
const (
	grantKeyLen    = 8
	grantSecretLen = 32
)

// newGrantToken returns a new grant token and its stored hash.
func newGrantToken(r io.Reader, now time.Time) (string, []byte, error) {
	b := make([]byte, grantKeyLen, grantKeyLen+grantSecretLen)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	secret, err := randomBytes(r, grantSecretLen)
	if err != nil {
		return "", nil, err
	}
	tok := grantPrefix + base64.RawURLEncoding.EncodeToString(append(b, secret...))
	return tok, append(b[:grantKeyLen:grantKeyLen], HashToken([]byte(tok))...), nil
}

// grantHash is the stored form of a grant token. Tokens issued before the
// order key existed (32 bytes after the prefix) are stored as their plain
// SHA-256, like any other token, and are still looked up that way; so is
// anything that is not a grant token, which matches no grant. The length
// is checked first: the base64 decoder skips CR and LF, so a token with
// one inserted would otherwise decode.
func grantHash(tok string) []byte {
	h := HashToken([]byte(tok))
	if len(tok) != len(grantPrefix)+base64.RawURLEncoding.EncodedLen(grantKeyLen+grantSecretLen) || !strings.HasPrefix(tok, grantPrefix) {
		return h
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[len(grantPrefix):])
	if err != nil || len(raw) != grantKeyLen+grantSecretLen {
		return h
	}
	return append(raw[:grantKeyLen:grantKeyLen], h...)
}

// randomPIN returns n decimal digits, uniformly, leading zeros kept.
func randomPIN(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 16)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		for _, b := range buf {
			// 250 = 25*10: rejecting 250..255 keeps the digits uniform.
			if b < 250 && len(out) < n {
				out = append(out, '0'+b%10)
			}
		}
	}
	return string(out), nil
}

// HashToken is the stored form of a high-entropy secret (BUID secret, grant,
// API key, link token): SHA-256. Such secrets cannot be guessed, so a keyed
// hash adds nothing.
func HashToken(token []byte) []byte {
	h := sha256.Sum256(token)
	return h[:]
}

// pinHash is the stored form of a PIN: HMAC-SHA256 under the server secret
// over the row id and the PIN, so a database dump alone cannot brute-force
// the small PIN space.
func pinHash(secret []byte, rowID int64, pin string) []byte {
	m := hmac.New(sha256.New, secret)
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(rowID))
	m.Write([]byte("pairingd/pin/v1\x00"))
	m.Write(id[:])
	m.Write([]byte(pin))
	return m.Sum(nil)
}

// equalHash compares two digests in constant time.
func equalHash(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// NormalizePIN applies the one documented rule: the input is put in Unicode
// NFKC form (full-width digits and spaces become ASCII), then white space and
// '-' are dropped, and what is left must be exactly n ASCII digits.
func NormalizePIN(in string, n int) (string, bool) {
	if len(in) > 8*n+32 || !utf8.ValidString(in) {
		return "", false
	}
	var b strings.Builder
	for _, r := range norm.NFKC.String(in) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case unicode.IsSpace(r) || r == '-':
		default:
			return "", false
		}
	}
	out := b.String()
	return out, len(out) == n
}
