package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

func TestKeyInQueryStringRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.link("u1")
	for _, q := range []string{"api_key=" + e.key, "access_token=" + e.key, "key=x", "token=x", "ACCESS_TOKEN=x", "a=1&Api_Key=x"} {
		// Refused even with a valid header, and without one (400, not 401).
		for _, auth := range []string{"Bearer " + e.key, ""} {
			r := e.do(http.MethodGet, "/v1/links/u1?"+q, "", header{"Authorization", auth})
			expect(t, r, http.StatusBadRequest, "invalid_request")
			if msg, _ := r.errField("message").(string); !strings.Contains(msg, "Authorization header") || strings.Contains(msg, e.key) {
				t.Fatalf("message %q", msg)
			}
		}
	}
	expect(t, e.do(http.MethodGet, "/v1/links/u1?expand=1", ""), http.StatusOK, "")
}

func TestAuthFailuresLimitedPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.AuthFailureBurst, c.AuthFailureRatePerSecond = 3, 0.2 }))
	e.link("u1")
	bad := header{"Authorization", "Bearer pdk_guess"}
	for range 3 {
		expect(t, e.do(http.MethodGet, "/v1/links/u1", "", bad), http.StatusUnauthorized, "unauthorized")
	}
	// Out of failures: refused before the key is looked at, the good key too.
	r := e.do(http.MethodGet, "/v1/links/u1", "")
	expect(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q, want 5", r.header.Get("Retry-After"))
	}
	e.clock.Advance(5 * time.Second)
	expect(t, e.do(http.MethodGet, "/v1/links/u1", ""), http.StatusOK, "")
	// Successes cost nothing; the regained token goes on the next guess.
	expect(t, e.do(http.MethodGet, "/v1/links/u1", ""), http.StatusOK, "")
	expect(t, e.do(http.MethodGet, "/v1/links/u1", "", bad), http.StatusUnauthorized, "unauthorized")
	expect(t, e.do(http.MethodGet, "/v1/links/u1", "", bad), http.StatusTooManyRequests, "rate_limited")
}

// requestIPs returns the ip of every request line in the log.
func requestIPs(t *testing.T, logs string) []string {
	t.Helper()
	var ips []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line not JSON: %q", sc.Text())
		}
		if line["msg"] == "request" {
			ip, _ := line["ip"].(string)
			ips = append(ips, ip)
		}
	}
	return ips
}

func TestForwardedForTrust(t *testing.T) {
	t.Parallel()
	xff := header{"X-Forwarded-For", "203.0.113.7"}
	for _, tc := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"not trusted by default", nil, "127.0.0.1"},
		{"trusted from the configured proxy", []string{"127.0.0.1/32"}, "203.0.113.7"},
		{"single IP as proxy", []string{"127.0.0.1"}, "203.0.113.7"},
		// Echo trusts loopback and private ranges by default; we do not.
		{"other proxy range", []string{"10.0.0.0/8"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withConfig(func(c *Config) { c.TrustedProxies = tc.proxies }))
			e.do(http.MethodGet, "/healthz", "", xff)
			if ips := requestIPs(t, e.logs.String()); len(ips) != 1 || ips[0] != tc.want {
				t.Fatalf("logged ips %v, want %s", ips, tc.want)
			}
		})
	}

	// The 401 budget follows the client IP: behind a trusted proxy each
	// client has its own; without trust, spoofed headers share the peer's.
	for _, trusted := range []bool{false, true} {
		e := newEnv(t, withConfig(func(c *Config) {
			c.AuthFailureBurst = 1
			if trusted {
				c.TrustedProxies = []string{"127.0.0.0/8"}
			}
		}))
		bad := header{"Authorization", "Bearer pdk_guess"}
		expect(t, e.do(http.MethodGet, "/v1/links/u", "", bad, header{"X-Forwarded-For", "198.51.100.1"}), 401, "unauthorized")
		r := e.do(http.MethodGet, "/v1/links/u", "", bad, header{"X-Forwarded-For", "198.51.100.2"})
		if want := map[bool]int{false: 429, true: 401}[trusted]; r.status != want {
			t.Fatalf("trusted=%v: second client got %d, want %d", trusted, r.status, want)
		}
	}
}

func TestInvalidTrustedProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := New(Config{TrustedProxies: []string{"10.0.0.0/99"}}, Deps{Service: e.svc}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

// A client sending its headers one byte at a time is cut off by
// ReadHeaderTimeout.
func TestSlowlorisCutOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(Config{ReadHeaderTimeout: 300 * time.Millisecond}, e.srv.Config.Handler)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, conn) // returns when the server closes
		closed <- time.Now()
	}()
	start := time.Now()
	headers := "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("s", 200) + "\r\n\r\n"
	sent := 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for sent < len(headers) {
		select {
		case at := <-closed:
			if d := at.Sub(start); d > 2*time.Second {
				t.Fatalf("closed after %v", d)
			}
			return // cut off before the headers were complete
		case <-tick.C:
			if _, err := conn.Write([]byte{headers[sent]}); err != nil {
				return // the server hung up
			}
			sent++
		}
	}
	t.Fatalf("server waited for all %d header bytes (%v)", sent, time.Since(start))
}

func TestHTTPServerSettings(t *testing.T) {
	t.Parallel()
	hs := NewHTTPServer(Config{Listen: ":0"}, http.NotFoundHandler())
	if hs.ReadHeaderTimeout != 5*time.Second || hs.ReadTimeout != 15*time.Second || hs.WriteTimeout != 30*time.Second ||
		hs.IdleTimeout != 120*time.Second || hs.MaxHeaderBytes != 64<<10 || hs.Addr != ":0" {
		t.Fatalf("defaults %+v", hs)
	}
	hs = NewHTTPServer(Config{ReadHeaderTimeout: time.Second, maxHeaderBytes: 1024}, http.NotFoundHandler())
	if hs.ReadHeaderTimeout != time.Second || hs.MaxHeaderBytes != 1024 {
		t.Fatalf("overrides %+v", hs)
	}
}

// The public routes' burst is derived: twice server.public_rate_per_second
// (40 at the default 20), at least 1.
func TestPublicBurstIsTwiceTheRate(t *testing.T) {
	t.Parallel()
	if b := DefaultConfig().publicBurstOf(); b != 40 {
		t.Fatalf("default burst %d, want 40", b)
	}
	for _, c := range []struct {
		rate float64
		want int
	}{{20, 40}, {6, 12}, {1.25, 3}, {0.2, 1}, {0.001, 1}} {
		if b := (Config{PublicRatePerSecond: c.rate}).publicBurstOf(); b != c.want {
			t.Errorf("rate %v: burst %d, want %d", c.rate, b, c.want)
		}
	}
}

// The log of a whole session holds none of the secrets that went through.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := &fakeChannel{}
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", PINs: ch})
	var pins, buids, grants []string
	note := func(p pairing.IssuedPIN) { pins, buids = append(pins, p.PIN), append(buids, p.BUID) }

	p1 := e.issueFor("100")
	note(p1)
	bad := p1
	bad.PIN = wrongPIN(p1.PIN)
	e.authorize(bad, "")
	reg := e.authorize(p1, "")
	grants = append(grants, reg.str("grant"))
	e.post("/v1/links", map[string]any{"grant": reg.str("grant"), "user_id": "u1"})

	p2 := e.issueFor("100")
	note(p2)
	conf := e.authorize(p2, "u2")
	grants = append(grants, conf.str("grant"))
	e.post("/v1/links", map[string]any{"grant": conf.str("grant"), "user_id": "u2"})

	p3 := e.issueFor("200")
	note(p3)
	e.clock.Advance(time.Minute)
	e.post("/v1/pins/resend", map[string]string{"buid": p3.BUID})
	for _, p := range ch.sent {
		note(p)
	}
	e.do(http.MethodGet, "/v1/links/u1?api_key="+e.key, "")
	e.do(http.MethodGet, "/v1/links/u1", "", header{"Authorization", "Bearer " + e.key + "x"})
	e.post("/v1/authorize", map[string]string{"buid": p3.BUID, "pin": p3.PIN, "junk": e.key})
	e.do(http.MethodPost, "/v1/authorize", `{"buid":"`+p3.BUID+`","pin":"`+p3.PIN+`"`)

	logs := e.logs.String()
	if len(requestIPs(t, logs)) < 10 {
		t.Fatalf("too few request lines:\n%s", logs)
	}
	if grants[0] == "" || grants[1] == "" {
		t.Fatal("flow produced no grants")
	}
	for _, s := range append(append(append(buids, grants...), e.key), e.key[:12]) {
		if strings.Contains(logs, s) {
			t.Errorf("log holds secret %q", s)
		}
	}
	for _, pin := range pins {
		if regexp.MustCompile(`(^|[^0-9])` + pin + `([^0-9]|$)`).MatchString(logs) {
			t.Errorf("log holds PIN %s", pin)
		}
	}
	for _, frag := range []string{"?api_key", "/v1/links/u1", "Bearer"} {
		if strings.Contains(logs, frag) {
			t.Errorf("log holds request detail %q", frag)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.authorize(e.issue(), "")
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", r.header)
	}
}

func TestPanicAndInternalErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withService(func(s *pairing.Service) Service { return &failingService{s} }))
	e.link("u1")
	expect(t, e.do(http.MethodGet, "/v1/links/u1", ""), http.StatusOK, "")
	r := e.do(http.MethodGet, "/v1/links/panic", "")
	expect(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(r.raw, "boom") {
		t.Fatalf("panic shown: %s", r.raw)
	}
	r = e.do(http.MethodGet, "/v1/links/fail", "")
	expect(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(r.raw, "hunter2") {
		t.Fatalf("internal detail shown: %s", r.raw)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, "hunter2") {
		t.Fatalf("detail not logged:\n%s", logs)
	}
	// Still serving.
	expect(t, e.do(http.MethodGet, "/healthz", ""), http.StatusOK, "")
	if m := e.do(http.MethodGet, "/metrics", ""); !strings.Contains(m.raw, "pairingd_http_panics_total 1") {
		t.Fatalf("panic not counted:\n%s", m.raw)
	}
}

// failingService panics or fails in GetLink, by user id.
type failingService struct{ *pairing.Service }

func (f *failingService) GetLink(ctx context.Context, id string) (pairing.Link, error) {
	switch id {
	case "panic":
		panic("boom")
	case "fail":
		return pairing.Link{}, errors.New("query failed: password=hunter2")
	}
	return f.Service.GetLink(ctx, id)
}

// A single trusted proxy is that one host, written as IPv4, IPv6 or
// IPv4-mapped IPv6.
func TestParseProxiesSingleHosts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		proxy      string
		trusts     []string
		trustsNone []string
	}{
		{"10.0.0.1", []string{"10.0.0.1", "::ffff:10.0.0.1"}, []string{"10.0.0.2", "::1"}},
		{"::ffff:10.0.0.1", []string{"10.0.0.1", "::ffff:10.0.0.1"}, []string{"10.0.0.2", "::1", "::2"}},
		{"2001:db8::1", []string{"2001:db8::1"}, []string{"2001:db8::2", "10.0.0.1"}},
		{"10.0.0.0/8", []string{"10.1.2.3"}, []string{"11.0.0.1"}},
	} {
		trusted, err := trustedNets([]string{tc.proxy})
		if err != nil {
			t.Fatalf("%s: %v", tc.proxy, err)
		}
		for _, ip := range tc.trusts {
			if !trusted(net.ParseIP(ip)) {
				t.Errorf("%s does not trust %s", tc.proxy, ip)
			}
		}
		for _, ip := range tc.trustsNone {
			if trusted(net.ParseIP(ip)) {
				t.Errorf("%s trusts %s", tc.proxy, ip)
			}
		}
	}
	for _, bad := range []string{"fe80::1%eth0", "10.0.0", "proxy.example"} {
		if _, err := parseProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
