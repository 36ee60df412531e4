package pairing

import (
	"bytes"
	"testing"
)

// FuzzDecodeBUID: the decoder never panics, and whatever it accepts is
// canonical: encoding the decoded values gives the input back (with the
// current codec, or with the one earlier versions issued BUIDs with).
func FuzzDecodeBUID(f *testing.F) {
	c, err := newBUIDCodec()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := c.encode(42, bytes.Repeat([]byte{7}, 16))
	for _, s := range []string{good, "", "a", "0", good + "x", "ÿÿ", "\x00", "86Rf07xd4z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := c.decode(s)
		if !ok {
			return
		}
		again, err := c.encode(id, secret)
		if err == nil && again == s {
			return
		}
		old, lerr := c.legacy.Encode(buidNumbers(id, secret))
		if lerr != nil || old != s {
			t.Fatalf("accepted non-canonical %q (re-encodes to %q, %v; legacy %q, %v)", s, again, err, old, lerr)
		}
	})
}

func FuzzNormalizePIN(f *testing.F) {
	for _, s := range []string{"123456", "１２３４５６", "12 34-56", "", "\u3000", "١٢٣٤٥٦"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, ok := NormalizePIN(s, 6)
		if ok && (len(out) != 6 || bytes.IndexFunc([]byte(out), func(r rune) bool { return r < '0' || r > '9' }) >= 0) {
			t.Fatalf("%q -> %q", s, out)
		}
	})
}
