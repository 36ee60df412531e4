package api

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Slow webhook uploads are bounded before anything checks who sent them:
// per client address, and in bytes across all addresses. Past a bound the
// answer is an immediate 429, and other clients are still served.
func TestWebhookUploadsBoundedPerIPAndInTotal(t *testing.T) {
	var entered atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	})
	e := newEnv(t,
		withConfig(func(c *Config) {
			c.TrustedProxies = []string{"127.0.0.0/8"}
			c.publicBurst = 1000
			c.PublicRatePerSecond = 1000
		}),
		withDeps(func(d *Deps) {
			d.Webhooks = []Webhook{{Method: http.MethodPost, Path: "/webhooks/slow", Handler: slow}}
		}))

	var pipes []*io.PipeWriter
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, p := range pipes {
			p.Close()
		}
		wg.Wait()
	})
	// start opens an upload that declares size bytes and sends none until
	// the test ends.
	start := func(ip string, size int64) {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/webhooks/slow", pr)
		req.ContentLength = size
		req.Header.Set("X-Forwarded-For", ip)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
	}
	waitEntered := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for entered.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d uploads admitted, want %d", entered.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// refused sends one more upload and wants an immediate 429.
	refused := func(ip string, size int64) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/webhooks/slow", io.LimitReader(neverEnding{}, size))
		req.ContentLength = size
		req.Header.Set("X-Forwarded-For", ip)
		began := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusTooManyRequests || time.Since(began) > time.Second {
			t.Fatalf("upload from %s past the bound: %d after %s", ip, res.StatusCode, time.Since(began))
		}
	}

	for range uploadsPerIP {
		start("203.0.113.1", 1000)
	}
	waitEntered(uploadsPerIP)
	refused("203.0.113.1", 1000)
	if r := e.do(http.MethodGet, "/healthz", ""); r.status != http.StatusOK {
		t.Fatalf("healthz beside the held uploads: %d", r.status)
	}

	// Bodies of the full limit from many addresses: the byte budget
	// admits budget/limit of them, whatever their addresses.
	limit := int64(1 << 20)
	fit := (uploadsBudget - uploadsPerIP*1000) / limit // whole-limit bodies that fit beside them
	for i := range fit {
		start("198.51.100."+strconv.Itoa(int(i)+1), limit)
	}
	admitted := uploadsPerIP + fit
	waitEntered(admitted)
	refused("192.0.2.200", limit)
	// A small upload still fits in what is left of the budget.
	start("192.0.2.201", 1000)
	waitEntered(admitted + 1)
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
