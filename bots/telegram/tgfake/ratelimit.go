package tgfake

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// RateLimits are Telegram's flood limits on sendMessage, which the fake
// enforces when asked to (EnforceRateLimits): at most PerChat messages to
// one chat and PerBot messages in all within any Window. Telegram's are
// about 1 per second per chat and 30 per second per bot. A message over a
// limit is refused like Telegram refuses it:
//
//	{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}
//
// with retry_after in whole seconds (at least 1), and is not delivered.
type RateLimits struct {
	PerChat int
	PerBot  int
	Window  time.Duration
}

// limiter is the sliding-window state of RateLimits.
type limiter struct {
	RateLimits
	bot     []time.Time
	chats   map[int64][]time.Time
	refused int
	now     func() time.Time
}

// EnforceRateLimits turns the flood limits on (a zero Window turns them
// off). Tests that scale the limits down keep Telegram's shape: a scaled
// Window with the same counts.
func (s *Server) EnforceRateLimits(l RateLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.Window <= 0 {
		s.limits = nil
		return
	}
	s.limits = &limiter{RateLimits: l, chats: map[int64][]time.Time{}, now: time.Now}
}

// TooManyRequests counts the sendMessage calls the flood limits refused.
func (s *Server) TooManyRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil {
		return 0
	}
	return s.limits.refused
}

// rateLimitLocked refuses a send over a limit, else counts it. Callers
// hold s.mu.
func (s *Server) rateLimitLocked(p url.Values) *apiError {
	l := s.limits
	if l == nil {
		return nil
	}
	chat, err := strconv.ParseInt(p.Get("chat_id"), 10, 64)
	if err != nil {
		return nil // sendMessage refuses it anyway
	}
	now := l.now()
	cut := now.Add(-l.Window)
	l.bot = recent(l.bot, cut)
	l.chats[chat] = recent(l.chats[chat], cut)
	var wait time.Duration
	if l.PerBot > 0 && len(l.bot) >= l.PerBot {
		wait = l.bot[len(l.bot)-l.PerBot].Add(l.Window).Sub(now)
	}
	if c := l.chats[chat]; l.PerChat > 0 && len(c) >= l.PerChat {
		wait = max(wait, c[len(c)-l.PerChat].Add(l.Window).Sub(now))
	}
	if wait > 0 {
		l.refused++
		return telegramError(http.StatusTooManyRequests, max(1, int(math.Ceil(wait.Seconds()))))
	}
	l.bot = append(l.bot, now)
	l.chats[chat] = append(l.chats[chat], now)
	return nil
}

// recent drops the times at or before cut (they are in order).
func recent(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}
