package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

// BenchmarkAuthorizeHTTP measures POST /v1/authorize through the whole
// HTTP stack (client, server, middleware, validator, service, store).
// PINs are issued before the timer starts; each iteration spends one.
func BenchmarkAuthorizeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name    string
		linked  bool
		outcome string
	}{
		{"match", true, "match"},
		{"register", false, "register"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			svc, err := pairing.New(benchStore(b), pairing.Config{Secret: []byte(strings.Repeat("k", 32))},
				pairing.WithClock(pairingtest.NewClock(t0)))
			if err != nil {
				b.Fatal(err)
			}
			h, err := New(Config{}, Deps{Service: svc})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			_, key, err := svc.CreateAPIKey(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}

			bodies := make([][]byte, b.N)
			for i := range bodies {
				lk := pairing.LeadKey{Channel: "telegram", ExternalID: strconv.Itoa(i)}
				issue := func() pairing.IssuedPIN {
					p, err := svc.IssuePIN(ctx, lk, pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{Force: true})
					if err != nil {
						b.Fatal(err)
					}
					return p
				}
				p := issue()
				if bc.linked {
					if _, err := svc.Authorize(ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: "u" + strconv.Itoa(i)}); err != nil {
						b.Fatal(err)
					}
					p = issue()
				}
				bodies[i], _ = json.Marshal(map[string]string{"buid": p.BUID, "pin": p.PIN})
			}
			client := srv.Client()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/authorize", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var out struct{ Outcome string }
				err = json.NewDecoder(res.Body).Decode(&out)
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK || out.Outcome != bc.outcome {
					b.Fatalf("status %d outcome %q err %v", res.StatusCode, out.Outcome, err)
				}
			}
		})
	}
}
