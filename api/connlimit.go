package api

import (
	"net"
	"net/http"
	"sync"
	"syscall"
)

// connLimiter caps the open connections, per client address and in all, so
// one host opening connections by the thousand cannot use up the process's
// file descriptors and memory and starve everybody else. A connection past
// a cap is closed as soon as it is accepted; idle keep-alive connections
// are closed as soon as they go idle while the total is near its cap.
// Addresses of trusted proxies are not capped per address: every client
// behind them shares it.
type connLimiter struct {
	total, perIP int
	trusted      func(net.IP) bool

	mu     sync.Mutex
	open   int
	byAddr map[string]int
}

// pressure is the share of the total cap past which idle connections are
// not kept alive.
const pressureNum, pressureDen = 4, 5

// defaultMaxConnections leaves a quarter of the process's file descriptors
// (at least 256) for the database, the platforms' APIs and the logs.
func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return 1024
	}
	n := int(min(lim.Cur, 1<<20))
	return max(64, min(n*3/4, n-256))
}

// limitConnections wraps ln with the caps of cfg and makes srv drop idle
// connections under pressure.
func limitConnections(ln net.Listener, srv *http.Server, cfg Config) (net.Listener, error) {
	trusted, err := trustedNets(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	l := &connLimiter{total: cfg.MaxConnections, perIP: cfg.MaxConnectionsPerIP, byAddr: map[string]int{}, trusted: trusted}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateIdle && l.underPressure() {
			_ = c.Close()
		}
		if next != nil {
			next(c, st)
		}
	}
	return &limitedListener{Listener: ln, l: l}, nil
}

func (l *connLimiter) underPressure() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open*pressureDen >= l.total*pressureNum
}

// admit counts a new connection from addr, or says it is past a cap.
func (l *connLimiter) admit(addr string, ip net.IP) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	capped := ip == nil || !l.trusted(ip)
	if l.open >= l.total || (capped && l.byAddr[addr] >= l.perIP) {
		return false
	}
	l.open++
	if capped {
		l.byAddr[addr]++
	}
	return true
}

func (l *connLimiter) release(addr string, capped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if capped {
		if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
			delete(l.byAddr, addr)
		}
	}
}

type limitedListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection within the caps; the ones past them
// are closed here and never reach the HTTP server.
func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		ip := net.ParseIP(host)
		if !ll.l.admit(host, ip) {
			_ = c.Close()
			continue
		}
		capped := ip == nil || !ll.l.trusted(ip)
		return &countedConn{Conn: c, release: sync.OnceFunc(func() { ll.l.release(host, capped) })}, nil
	}
}

// countedConn gives its slot back when closed, however many times.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// trustedNets is whether an address is one of the trusted proxies.
func trustedNets(proxies []string) (func(net.IP) bool, error) {
	nets, err := parseProxies(proxies)
	if err != nil {
		return nil, err
	}
	return func(ip net.IP) bool {
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}, nil
}
