package api

import (
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterEntries bounds the per-IP table so a flood of addresses cannot
// grow it without end.
const maxLimiterEntries = 100_000

// ipLimiter is a token bucket per client IP (IPv6 per /64, since one host
// usually owns a whole /64). Buckets that are full again carry no state and
// are dropped in a sweep once a minute.
type ipLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	return &ipLimiter{limit: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token; when none is left it says how long to wait.
func (l *ipLimiter) allow(ip string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.bucket(ip, now)
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, l.waitFor(b, now)
}

// wait says how long until the IP has a token again, without taking one;
// 0 when it has one now.
func (l *ipLimiter) wait(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[ipKey(ip)]
	if !ok || b.TokensAt(now) >= 1 {
		return 0
	}
	return l.waitFor(b, now)
}

// take spends a token, if one is left.
func (l *ipLimiter) take(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.bucket(ip, now).AllowN(now, 1)
}

func (l *ipLimiter) waitFor(b *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	secs := math.Ceil(missing / float64(l.limit))
	return max(time.Duration(secs)*time.Second, time.Second)
}

func (l *ipLimiter) bucket(ip string, now time.Time) *rate.Limiter {
	k := ipKey(ip)
	if b, ok := l.buckets[k]; ok {
		return b
	}
	if now.Sub(l.lastSweep) > time.Minute || len(l.buckets) >= maxLimiterEntries {
		l.sweep(now)
	}
	b := rate.NewLimiter(l.limit, l.burst)
	l.buckets[k] = b
	return b
}

// sweep drops full buckets; if the table is still at its cap, it drops
// arbitrary ones (map order is random), which at worst forgives some IPs.
func (l *ipLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxLimiterEntries*9/10 {
			break
		}
		delete(l.buckets, k)
	}
}

// ipKey is the bucket of an address: IPv4 as is, IPv6 by its /64.
func ipKey(ip string) string {
	p := net.ParseIP(ip)
	if p == nil || p.To4() != nil {
		return ip
	}
	return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
