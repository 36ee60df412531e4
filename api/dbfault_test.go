package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// cutProxy is a TCP proxy in front of PostgreSQL that the test can cut
// (every connection dropped, new ones refused) and restore, to play a
// database outage without stopping the server other tests share.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestPostgresOutage: while PostgreSQL cannot be reached, requests fail
// fast with 503 unavailable and /readyz says so; nothing is half written
// (the PIN tried during the outage still works after it); and the service
// recovers by itself when the database returns.
func TestPostgresOutage(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("needs a URL-form DSN, got %q", dsn)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: u.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newRealEnv(t, st)
	ready := func() int {
		res, err := e.srv.Client().Get(e.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	p := e.issue("outage")
	if ready() != http.StatusOK {
		t.Fatal("not ready before the outage")
	}

	proxy.cut()
	begin := time.Now()
	for i := range 3 {
		if s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN}); s != 503 || c != "unavailable" {
			t.Fatalf("authorize %d during the outage: %d %s", i, s, c)
		}
	}
	if s, c, _ := e.post(e.key, "/v1/links", map[string]string{"grant": "pgr_" + "x", "user_id": "u"}); s != 503 && s != 404 {
		t.Fatalf("links during the outage: %d %s", s, c)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Fatalf("failing took %v: requests must fail fast", d)
	}
	// /readyz reuses an answer for readyFor, so it says so within that.
	for got := ready(); got != http.StatusServiceUnavailable; got = ready() {
		if time.Since(begin) > readyFor+5*time.Second {
			t.Fatalf("readyz during the outage: %d", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Fatalf("failing took %v: requests must fail fast", d)
	}

	proxy.restore()
	deadline := time.Now().Add(15 * time.Second)
	for ready() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("did not recover after the database returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN}); s != 200 || c != "register" {
		t.Fatalf("the PIN tried during the outage must still work: %d %s", s, c)
	}
}
