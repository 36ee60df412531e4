package pairing

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// FuzzInboundSeal: for any payload, the stored form holds no string a
// token scan would find in the clear, and opening it gives the payload
// back byte for byte.
func FuzzInboundSeal(f *testing.F) {
	for _, s := range []string{
		`{"message":{"text":"/start pdl_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdefg"}}`,
		`dl:ok:psi_0123456789abcdefghijABCDEFGHIJ dl:no:psi_0123456789abcdefghijABCDEFGHIJ`,
		`x-pdl_0123456789abcdefghijklmn pgr_0123456789abcdefghijklmnopq pzs_notreallysealed0123456789012345678901234567`,
		``, `pdl_`, `pdk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`,
	} {
		f.Add([]byte(s))
	}
	seal := newTokenSeal(bytes.Repeat([]byte("k"), 32), rand.Reader)
	f.Fuzz(func(t *testing.T, payload []byte) {
		stored, err := seal.seal(payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bearerTokenRE.FindAllIndex(stored, -1) {
			if (m[0] == 0 || !tokenChar(stored[m[0]-1])) && (m[1] == len(stored) || !tokenChar(stored[m[1]])) {
				t.Fatalf("a token in the clear at %d of %q", m[0], stored)
			}
		}
		if got := seal.open(stored); !bytes.Equal(got, payload) {
			t.Fatalf("round trip:\n in  %q\n out %q", payload, got)
		}
	})
}
