package api

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Browser routes (Webhook.Page: the sign-in pages, authorize, their
// polling) are not counted by the upload gate, so more page posts than
// uploadsPerIP from one address are all served; they have per-IP limits
// of their own, in buckets apart from the webhooks'.
func TestPageRoutesSkipUploadGateAndHaveTheirOwnLimit(t *testing.T) {
	var entered atomic.Int64
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		<-release
		_, _ = io.Copy(io.Discard, r.Body)
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	const burst = uploadsPerIP * 3
	e := newEnv(t,
		withConfig(func(c *Config) {
			c.TrustedProxies = []string{"127.0.0.0/8"}
			c.publicBurst = burst
			c.PublicRatePerSecond = 0.001 // no refill during the test
		}),
		withDeps(func(d *Deps) {
			d.Webhooks = []Webhook{
				{Method: http.MethodPost, Path: "/signin/held", Handler: slow, Page: true},
				{Method: http.MethodPost, Path: "/signin/quick", Handler: ok, Page: true},
				{Method: http.MethodPost, Path: "/webhooks/quick", Handler: ok},
			}
		}))
	post := func(path, ip string) int {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, http.NoBody)
		req.ContentLength = 5
		req.Body = io.NopCloser(io.LimitReader(neverEnding{}, 5))
		req.Header.Set("X-Forwarded-For", ip)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}

	// Twice the upload gate's per-IP bound of page posts held open at once
	// from one address: all admitted.
	held := 2 * uploadsPerIP
	var wg sync.WaitGroup
	codes := make(chan int, held)
	for range held {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- post("/signin/held", "203.0.113.7") }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for entered.Load() < int64(held) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d page posts admitted at once from one address, want %d", entered.Load(), held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("held page post answered %d", c)
		}
	}

	// The page bucket of that address has burst-held tokens left; past
	// them 429, while the same address's webhook bucket is untouched.
	for i := range burst - held {
		if c := post("/signin/quick", "203.0.113.7"); c != http.StatusOK {
			t.Fatalf("page post %d within the burst: %d", i, c)
		}
	}
	if c := post("/signin/quick", "203.0.113.7"); c != http.StatusTooManyRequests {
		t.Fatalf("page post past the per-IP limit: %d, want 429", c)
	}
	if c := post("/webhooks/quick", "203.0.113.7"); c != http.StatusOK {
		t.Fatalf("webhook from an address whose page bucket is empty: %d", c)
	}
	if c := post("/signin/quick", "203.0.113.8"); c != http.StatusOK {
		t.Fatalf("page post from another address: %d", c)
	}
}
