package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

// BenchmarkNotifyHTTP measures accepted notifications: POST
// /v1/users/{user_id}/messages through the whole HTTP stack onto real
// SQLite (message + delivery written in one transaction), for 100 linked
// users. Nothing is sent: the worker is not running.
func BenchmarkNotifyHTTP(b *testing.B) {
	ctx := context.Background()
	svc, err := pairing.New(benchStore(b), pairing.Config{Secret: []byte(strings.Repeat("k", 32))},
		pairing.WithClock(pairingtest.NewClock(t0)))
	if err != nil {
		b.Fatal(err)
	}
	svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Notifications: &okDeliverer{}, NotifyLimits: pairing.ChannelLimits{MaxText: 4096, UTF16: true}, NotifyPace: pairing.Pace{}})
	const users = 100
	for i := range users {
		p, err := svc.IssuePIN(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: strconv.Itoa(i + 1)}, pairing.Profile{}, pairing.IssueOptions{Force: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Authorize(ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: "u" + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
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
	body := []byte(`{"text":"Your order shipped","buttons":[{"text":"Track","url":"https://shop.example/o/7"}]}`)
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/users/u"+strconv.Itoa(i%users)+"/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "bench-"+strconv.Itoa(i))
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
}
