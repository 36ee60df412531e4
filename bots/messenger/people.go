package messenger

import (
	"context"
	"time"

	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// --- the 24-hour window ---

// window is how long after the person's last message a page may answer
// without a message tag.
const window = 24 * time.Hour

// noteInbound records that the person wrote now.
func (h *Hub) noteInbound(key pairing.LeadKey) {
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.inbound) > 50000 {
		for k, t := range h.inbound {
			if now.Sub(t) > window {
				delete(h.inbound, k)
			}
		}
	}
	h.inbound[key] = now
}

// inWindow tells whether the person wrote within the last 24 hours, as far
// as this instance saw.
func (h *Hub) inWindow(key pairing.LeadKey) bool {
	h.mu.Lock()
	t, ok := h.inbound[key]
	h.mu.Unlock()
	return ok && h.clock.Now().Sub(t) < window
}

// --- user profiles ---

type cachedProfile struct {
	p       pairing.Profile
	expires time.Time
}

// profile returns the person's names and locale from the User Profile
// API, cached; an empty profile when Meta does not give it.
func (h *Hub) profile(ctx context.Context, p *page, key pairing.LeadKey) pairing.Profile {
	now := h.clock.Now()
	h.mu.Lock()
	c, ok := h.profiles[key]
	h.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.p
	}
	prof, err := p.graph.userProfile(ctx, key.ExternalID)
	ttl := 24 * time.Hour
	if err != nil {
		h.log.Debug("user profile not available", "channel", p.cfg.Name, "err", err)
		prof, ttl = pairing.Profile{}, time.Hour
	}
	prof.Username = ""
	prof.FirstName = channel.Clip(prof.FirstName, 128)
	prof.LastName = channel.Clip(prof.LastName, 128)
	prof.Locale = channel.Clip(prof.Locale, 16)
	h.mu.Lock()
	if len(h.profiles) > 50000 {
		clear(h.profiles)
	}
	h.profiles[key] = cachedProfile{p: prof, expires: now.Add(ttl)}
	h.mu.Unlock()
	return prof
}
