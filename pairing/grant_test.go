package pairing

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// Grant tokens carry an order key, so their stored hashes grow with the
// issue time (new rows land at the end of the unique index), while the
// secret half is still the token's SHA-256.
func TestGrantTokenOrdersStoredHashes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var prev []byte
	seen := map[string]bool{}
	for i := range 1000 {
		tok, h, err := newGrantToken(rand.Reader, at.Add(time.Duration(i)*time.Microsecond))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, grantPrefix) || len(tok) != len(grantPrefix)+54 {
			t.Fatalf("token %d has the wrong shape: %d characters", i, len(tok))
		}
		if !bytes.Equal(h, grantHash(tok)) {
			t.Fatalf("token %d: issued hash differs from the lookup hash", i)
		}
		if !bytes.Equal(h[grantKeyLen:], HashToken([]byte(tok))) || len(h) != grantKeyLen+32 {
			t.Fatalf("token %d: stored form is not order key + SHA-256 of the token", i)
		}
		if prev != nil && bytes.Compare(prev, h) >= 0 {
			t.Fatalf("token %d: stored hash does not follow the previous one", i)
		}
		if seen[tok] {
			t.Fatalf("token %d issued twice", i)
		}
		seen[tok] = true
		prev = h
	}
}

// A grant issued before the order key existed (32 random bytes) is looked
// up by its plain SHA-256; a token whose order key or secret was altered
// matches nothing it did not match before.
func TestGrantHashForms(t *testing.T) {
	t.Parallel()
	legacy := grantPrefix + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if !bytes.Equal(grantHash(legacy), HashToken([]byte(legacy))) {
		t.Fatal("legacy grant token: lookup hash is not its SHA-256")
	}
	tok, h, err := newGrantToken(rand.Reader, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []int{len(grantPrefix) + 2, len(tok) - 3} { // in the order key, in the secret
		b := []byte(tok)
		b[pos] ^= 'A' ^ 'B'
		if bytes.Equal(grantHash(string(b)), h) {
			t.Fatalf("altered at %d: same stored hash", pos)
		}
	}
	// Not grant tokens at all: hashed whole, never a panic.
	for _, s := range []string{"", "pgr_", "pgr_!!!", "pdl_" + tok[len(grantPrefix):], tok + "A", strings.Repeat("x", 200),
		tok[:30] + "\r" + tok[30:], tok[:30] + "\n" + tok[31:]} {
		if !bytes.Equal(grantHash(s), HashToken([]byte(s))) {
			t.Fatalf("%q: not hashed whole", s)
		}
	}
}

// FuzzGrantHash: any string a site sends as a grant is hashed without a
// panic, and only a well-formed order-keyed token gets the keyed form,
// whose secret half is always the token's SHA-256.
func FuzzGrantHash(f *testing.F) {
	tok, _, err := newGrantToken(rand.Reader, time.Unix(1_800_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{tok, "", "pgr_", tok[:len(tok)-1], tok + "=", "pgr_" + strings.Repeat("A", 43), "pgr_\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := grantHash(s)
		sum := HashToken([]byte(s))
		switch {
		case bytes.Equal(h, sum):
		case len(h) == grantKeyLen+len(sum) && bytes.Equal(h[grantKeyLen:], sum) && strings.HasPrefix(s, grantPrefix) &&
			len(s) == len(grantPrefix)+54:
		default:
			t.Fatalf("%q: unexpected stored form %x", s, h)
		}
	})
}
