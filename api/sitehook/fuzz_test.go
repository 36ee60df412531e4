package sitehook_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api/sitehook"
)

// FuzzVerify: any header and body is refused or accepted without a panic,
// and a header made by SignatureHeader always verifies its own body.
func FuzzVerify(f *testing.F) {
	f.Add("t=1795428000,v1="+vectorSig, []byte(vectorBody), int64(1795428000))
	f.Add("t=,v1=", []byte{}, int64(0))
	f.Add(",,,=,t=1=2", []byte("{}"), int64(-1))
	f.Fuzz(func(t *testing.T, header string, body []byte, ts int64) {
		// Accepted only with the body's true signature in a v1 part.
		if sitehook.Verify(secret, header, body, time.Unix(vectorT, 0), 5*time.Minute) == nil {
			if !strings.Contains(header, sitehook.Sign(secret, vectorT, body)) && !containsOtherT(header, secret, body) {
				t.Fatalf("accepted %q without the body's signature", header)
			}
		}
		if ts <= 0 {
			return
		}
		h := sitehook.SignatureHeader(secret, ts, body)
		if err := sitehook.Verify(secret, h, body, time.Unix(ts, 0), time.Minute); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
	})
}

// containsOtherT tells whether header carries the body's signature for a
// t= value within the tolerance other than vectorT.
func containsOtherT(header string, secret, body []byte) bool {
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k != "t" {
			continue
		}
		if ts, err := strconv.ParseInt(v, 10, 64); err == nil && strings.Contains(header, sitehook.Sign(secret, ts, body)) {
			return true
		}
	}
	return false
}
