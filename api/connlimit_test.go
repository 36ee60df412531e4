package api

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// The caps: per client address (trusted proxies excepted) and in all; a
// closed connection gives its slot back; idle connections are dropped
// only under pressure.
func TestConnectionCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{}
	limited, err := limitConnections(ln, srv, Config{MaxConnections: 5, MaxConnectionsPerIP: 2, TrustedProxies: []string{"127.0.0.9"}})
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close()
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := limited.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer tells whether the server closed c at once.
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		ne, ok := err.(net.Error)
		return !(ok && ne.Timeout())
	}
	a1, a2, a3 := dial("127.0.0.1"), dial("127.0.0.1"), dial("127.0.0.1")
	if closedByServer(a1) || closedByServer(a2) || !closedByServer(a3) {
		t.Fatal("the third connection from one address was not refused")
	}
	// A trusted proxy's connections count only against the total.
	p1, p2, p3 := dial("127.0.0.9"), dial("127.0.0.9"), dial("127.0.0.9")
	if closedByServer(p1) || closedByServer(p2) || closedByServer(p3) {
		t.Fatal("a trusted proxy was capped per address")
	}
	if b := dial("127.0.0.2"); !closedByServer(b) {
		t.Fatal("the sixth connection in all was not refused")
	}
	if !limited.(*limitedListener).l.underPressure() {
		t.Fatal("5 of 5 open is not pressure")
	}
	// A connection the server closes gives its slot back.
	(<-accepted).Close()
	if c := dial("127.0.0.3"); closedByServer(c) {
		t.Fatal("a freed slot was not given to the next connection")
	}
}
