package messenger

import (
	"context"
	"slices"

	"github.com/pairingd/pairingd/pairing"
)

// onHandover tracks thread ownership and app roles (messaging_handovers).
// pairingd is not a conversation partner: when another app asks for a
// thread this Page owns, it gets it.
func (h *Hub) onHandover(ctx context.Context, p *page, ev event) error {
	it := ev.Item
	if it.AppRoles != nil {
		return h.onAppRoles(ctx, p, it.AppRoles)
	}
	psid := ev.psid()
	if !validPSID(psid) {
		h.log.Debug("handover event without a PSID ignored", "channel", p.cfg.Name)
		return nil
	}
	key := pairing.LeadKey{Channel: p.cfg.Name, ExternalID: psid}
	switch {
	case it.PassThread != nil:
		h.trackOwner(ctx, p, key, appID(it.PassThread.NewOwnerAppID))
	case it.TakeThread != nil:
		// Older payloads name only the previous owner: the new one is
		// then unknown, but it is not the previous one.
		h.trackOwner(ctx, p, key, appID(it.TakeThread.NewOwnerAppID))
	case it.RequestThread != nil:
		to := appID(it.RequestThread.RequestedOwnerAppID)
		owner, err := h.threads.ThreadOwner(ctx, key)
		if err != nil {
			return err
		}
		ours := owner == p.cfg.AppID && owner != "" || owner == "" && h.role(ctx, p) == RolePrimary
		if to == "" || !ours {
			h.log.Debug("thread control request not ours to grant", "channel", p.cfg.Name)
			return nil
		}
		if err := p.graph.passThreadControl(ctx, psid, to, "pairingd: requested"); err != nil {
			if IsPermanent(err) {
				h.log.Warn("pass thread control on request", "channel", p.cfg.Name, "err", err)
				return nil
			}
			return err
		}
		h.trackOwner(ctx, p, key, to)
	}
	return nil
}

// onAppRoles applies an app_roles event: which role this app now has on
// the Page.
func (h *Hub) onAppRoles(ctx context.Context, p *page, roles map[string][]string) error {
	mine, ok := roles[p.cfg.AppID]
	if p.cfg.AppID == "" || !ok {
		h.log.Debug("app roles event names other apps", "channel", p.cfg.Name)
		return nil
	}
	role := ""
	switch {
	case slices.Contains(mine, "primary_receiver"):
		role = RolePrimary
	case slices.Contains(mine, "secondary_receiver"):
		role = RoleSecondary
	default:
		return nil
	}
	prev := h.role(ctx, p)
	// Recorded for every instance (and kept across restarts), even when
	// the configuration says the same: Meta's word is the latest. A
	// failure leaves the event to be handled again.
	if err := h.threads.SetPageRole(ctx, p.cfg.Name, role); err != nil {
		return err
	}
	if prev != role {
		h.log.Info("handover role changed", "channel", p.cfg.Name, "role", role)
	}
	return nil
}

// trackOwner records a thread's owner if it changed.
func (h *Hub) trackOwner(ctx context.Context, p *page, key pairing.LeadKey, owner string) {
	cur, err := h.threads.ThreadOwner(ctx, key)
	if err == nil && cur == owner {
		return
	}
	if err := h.threads.SetThreadOwner(ctx, key, owner); err != nil {
		h.log.Error("set thread owner", "channel", p.cfg.Name, "err", err)
	}
}

// appID keeps an app id only when it looks like one.
func appID(f flexString) string {
	s := string(f)
	if !appIDPattern.MatchString(s) {
		return ""
	}
	return s
}
