package api

import (
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// uploadGate bounds what webhook bodies cost before anything has checked
// who sent them: a platform's signature covers the whole body, so the body
// must be read before it can be refused, and a slow sender could otherwise
// hold memory and a goroutine per upload for the whole read timeout. It
// admits at most perIP bodies at once from one client address, and at
// most `budget` bytes across all uploads in flight (each upload counts its
// declared length, or the body limit when it declares none). Past either
// bound the request is refused at once instead of waiting, so honest
// senders (which retry) and the rest of the service keep answering.
type uploadGate struct {
	perIP  int
	budget int64
	limit  int64 // the most one body may hold

	mu    sync.Mutex
	byIP  map[string]int
	inUse int64
}

// Bounds of the upload gate. Meta and Telegram send a few deliveries at
// once per address (Telegram's default max_connections is 40, spread over
// its addresses), each well under the body limit, so neither bound slows
// an honest platform; 16 MiB keeps the worst case of bodies in flight far
// below the memory a small instance has.
const (
	uploadsPerIP  = 8
	uploadsBudget = 16 << 20
)

func newUploadGate(perIP int, budget, limit int64) *uploadGate {
	return &uploadGate{perIP: perIP, budget: budget, limit: limit, byIP: map[string]int{}}
}

// acquire takes a slot for an upload of the declared size from ip; it
// returns a release func, or false when a bound is reached.
func (g *uploadGate) acquire(ip string, declared int64) (func(), bool) {
	cost := g.limit
	if declared >= 0 && declared < cost {
		cost = declared
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byIP[ip] >= g.perIP || g.inUse+cost > g.budget {
		return nil, false
	}
	g.byIP[ip]++
	g.inUse += cost
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.byIP[ip]--; g.byIP[ip] <= 0 {
				delete(g.byIP, ip)
			}
			g.inUse -= cost
		})
	}, true
}

// middleware refuses an upload past the bounds with 429 (a retry later
// will be admitted); bodiless requests (GET subscription checks) pass.
func (g *uploadGate) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.ContentLength == 0 {
			return next(c)
		}
		release, ok := g.acquire(c.RealIP(), r.ContentLength)
		if !ok {
			return &pairing.RetryError{Err: pairing.ErrRateLimited, RetryAfter: time.Second}
		}
		defer release()
		return next(c)
	}
}
