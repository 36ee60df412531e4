package sitehook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api/sitehook"
)

// verifyPairingd is the Go verification example of docs/events.md ("Events to
// the site"), copied verbatim: keep the two the same.
func verifyPairingd(secret []byte, header string, body []byte, now time.Time) bool {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(now.Sub(time.Unix(t, 0)).Seconds()) > 300 {
		return false // missing or stale timestamp: a replay
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body) // the raw body, before any JSON parsing
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// The test vector of docs/events.md, also checked there with Python and Node.
const (
	vectorSecret = "whsec_test_0123456789abcdef"
	vectorT      = 1795428000
	vectorBody   = `{"id":1,"type":"link.created","created_at":"2026-11-23T10:00:00Z","user_id":"site-user-7","data":{"by":"site","channel":"telegram","person_id":1}}`
	vectorSig    = "539e947f085569921b567fa892dfc6349de53881343e199df6b904a72834ced4"
)

func TestSignatureVector(t *testing.T) {
	if got := sitehook.Sign([]byte(vectorSecret), vectorT, []byte(vectorBody)); got != vectorSig {
		t.Fatalf("Sign = %s, want docs/events.md's %s", got, vectorSig)
	}
	h := sitehook.SignatureHeader([]byte(vectorSecret), vectorT, []byte(vectorBody))
	if h != "t=1795428000,v1="+vectorSig {
		t.Fatalf("header %s", h)
	}
}

func TestREADMEVerificationExample(t *testing.T) {
	secret := []byte(vectorSecret)
	now := time.Unix(vectorT, 0)
	body := []byte(vectorBody)
	h := sitehook.SignatureHeader(secret, vectorT, body)
	if !verifyPairingd(secret, h, body, now.Add(time.Minute)) {
		t.Fatal("the docs/events.md example refuses a good signature")
	}
	for name, c := range map[string]struct {
		secret, header, body string
		now                  time.Time
	}{
		"body changed":    {vectorSecret, h, strings.Replace(vectorBody, "site-user-7", "site-user-8", 1), now},
		"other secret":    {"another-secret-0123456789", h, vectorBody, now},
		"stale":           {vectorSecret, h, vectorBody, now.Add(6 * time.Minute)},
		"no timestamp":    {vectorSecret, "v1=" + vectorSig, vectorBody, now},
		"no signature":    {vectorSecret, "t=1795428000", vectorBody, now},
		"timestamp moved": {vectorSecret, "t=1795428001,v1=" + vectorSig, vectorBody, time.Unix(1795428001, 0)},
	} {
		if verifyPairingd([]byte(c.secret), c.header, []byte(c.body), c.now) {
			t.Errorf("%s: the docs/events.md example accepts it", name)
		}
	}
	// Rotation: a second v1 part is enough when one matches.
	if !verifyPairingd(secret, "t=1795428000,v1=00ff,v1="+vectorSig, body, now) {
		t.Fatal("a matching second v1 is refused")
	}
}

func TestVerify(t *testing.T) {
	secret := []byte(vectorSecret)
	now := time.Unix(vectorT, 0)
	body := []byte(vectorBody)
	h := sitehook.SignatureHeader(secret, vectorT, body)
	if err := sitehook.Verify(secret, h, body, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		header string
		body   string
		now    time.Time
		want   error
	}{
		{h, vectorBody + " ", now, sitehook.ErrSignature},
		{h, vectorBody, now.Add(-6 * time.Minute), sitehook.ErrTooOld},
		{"garbage", vectorBody, now, sitehook.ErrBadHeader},
		{"t=x,v1=" + vectorSig, vectorBody, now, sitehook.ErrBadHeader},
		{"t=1795428000", vectorBody, now, sitehook.ErrBadHeader},
	} {
		if err := sitehook.Verify(secret, c.header, []byte(c.body), c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.header, err, c.want)
		}
	}
}

// TestREADMEHasThisExample keeps the Go example of docs/events.md (the
// page on events to the site) and the function tested above the same text.
func TestREADMEHasThisExample(t *testing.T) {
	readme, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("verify_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(self), "func verifyPairingd(")
	end := strings.Index(string(self)[start:], "\n}\n") + start + 3
	if start < 0 || !strings.Contains(string(readme), string(self)[start:end]) {
		t.Fatal("docs/events.md's Go verification example differs from verifyPairingd in verify_example_test.go")
	}
	for _, v := range []string{vectorSecret, vectorBody, vectorSig} {
		if !strings.Contains(string(readme), v) {
			t.Fatalf("docs/events.md lacks the test vector part %q", v)
		}
	}
}
