package messenger

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pairingd/pairingd/pairing"
)

// authCodeTTL is how long an Account Linking authorization code is
// accepted by the "linked" webhook that follows the redirect.
const authCodeTTL = 10 * time.Minute

// AccountLinking finishes Messenger Account Linking for a site user logged
// in on the site's login page (POST /v1/messenger/account-linking). It
// resolves the PSID from the account_linking_token, links the lead, and
// returns redirect_uri with authorization_code appended, where the site
// sends the browser.
//
// Errors: *pairing.FieldError (bad redirect_uri or user_id),
// pairing.ErrTokenUnknown (no Page knows the token), an error wrapping
// *pairing.ConflictError, *pairing.ChannelError when the Graph API fails.
func (h *Hub) AccountLinking(ctx context.Context, accountLinkingToken, redirectURI, userID string) (string, error) {
	if err := pairing.ValidateUserID("user_id", userID); err != nil {
		return "", err
	}
	redirect, err := h.checkRedirect(redirectURI)
	if err != nil {
		return "", err
	}
	if !plausibleToken(accountLinkingToken) {
		return "", pairing.ErrTokenUnknown
	}
	p, psid, err := h.resolveLinkingToken(ctx, accountLinkingToken)
	if err != nil {
		return "", err
	}
	key := pairing.LeadKey{Channel: p.cfg.Name, ExternalID: psid}
	// The person tapped a button in the chat, so the lead normally exists;
	// make sure it does before linking.
	if _, err := h.svc.TouchLead(ctx, key, pairing.Profile{}); err != nil {
		return "", err
	}
	if _, err := h.svc.LinkLead(ctx, key, userID); err != nil {
		return "", err
	}
	code := h.authCode(p, psid, userID, h.clock.Now().Add(authCodeTTL))
	if redirect.RawQuery != "" {
		redirect.RawQuery += "&"
	}
	redirect.RawQuery += "authorization_code=" + url.QueryEscape(code)
	return redirect.String(), nil
}

// checkRedirect accepts only an https redirect_uri on an allowed host, so
// the authorization code cannot be sent anywhere else.
func (h *Hub) checkRedirect(raw string) (*url.URL, error) {
	bad := func(reason string) error { return &pairing.FieldError{Field: "redirect_uri", Reason: reason} }
	if raw == "" || len(raw) > 2048 {
		return nil, bad("must be 1..2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, bad("must be an absolute URL")
	}
	if u.Scheme != "https" {
		return nil, bad("must use https")
	}
	if u.User != nil || u.Fragment != "" {
		return nil, bad("must not carry user info or a fragment")
	}
	host := strings.ToLower(u.Hostname())
	for _, allowed := range h.redirectHosts {
		allowed = strings.ToLower(allowed)
		if allowed == host && u.Port() == "" || allowed == strings.ToLower(u.Host) {
			return u, nil
		}
	}
	return nil, bad("host is not an allowed Messenger redirect host")
}

// plausibleToken rejects what cannot be an account_linking_token before a
// Graph call: empty, huge, or with control characters.
func plausibleToken(t string) bool {
	if t == "" || len(t) > 1024 {
		return false
	}
	return strings.IndexFunc(t, unicode.IsControl) < 0
}

// resolveLinkingToken asks each Page's Graph API for the token's PSID.
// Graph refusals mean "not this Page"; an outage on every Page is a
// channel error, not an unknown token.
func (h *Hub) resolveLinkingToken(ctx context.Context, token string) (*page, string, error) {
	var outage error
	for _, p := range h.pages {
		pageID, psid, err := p.graph.psidForLinkingToken(ctx, token)
		switch {
		case err == nil && validPSID(psid) && (pageID == "" || pageID == p.cfg.PageID):
			return p, psid, nil
		case err == nil:
			h.log.Warn("account linking: unexpected answer", "channel", p.cfg.Name)
		case errors.Is(err, ErrRejected) || errors.Is(err, ErrBlocked) || errors.Is(err, ErrOutsideWindow) || errors.Is(err, ErrThreadControlled):
		default:
			outage = &pairing.ChannelError{Err: pairing.ErrChannelFailed, Channel: p.cfg.Name, Cause: err}
		}
	}
	if outage != nil {
		return nil, "", outage
	}
	return nil, "", pairing.ErrTokenUnknown
}

// authCodeContext separates this HMAC's use of the app secret from others.
const authCodeContext = "pairingd/messenger/authorization_code/v1\x00"

// authCode makes the stateless authorization code:
// base64url(psid|user_id|expiry) "." base64url(HMAC-SHA256(app secret,
// context, page id, payload)).
func (h *Hub) authCode(p *page, psid, userID string, expires time.Time) string {
	payload := psid + "|" + userID + "|" + strconv.FormatInt(expires.Unix(), 10)
	enc := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return enc + "." + base64.RawURLEncoding.EncodeToString(authMAC(p, enc))
}

func authMAC(p *page, enc string) []byte {
	m := hmac.New(sha256.New, []byte(p.cfg.AppSecret))
	m.Write([]byte(authCodeContext))
	m.Write([]byte(p.cfg.PageID))
	m.Write([]byte{0})
	m.Write([]byte(enc))
	return m.Sum(nil)
}

// verifyAuthCode checks a code made by authCode for this Page and not
// expired, and returns its PSID and site user.
func (h *Hub) verifyAuthCode(p *page, code string) (psid, userID string, ok bool) {
	if code == "" || len(code) > 2048 {
		return "", "", false
	}
	enc, sig, found := strings.Cut(code, ".")
	if !found {
		return "", "", false
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, authMAC(p, enc)) {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	s := string(raw)
	first, last := strings.IndexByte(s, '|'), strings.LastIndexByte(s, '|')
	if first < 0 || last <= first {
		return "", "", false
	}
	exp, err := strconv.ParseInt(s[last+1:], 10, 64)
	if err != nil || !h.clock.Now().Before(time.Unix(exp, 0)) {
		return "", "", false
	}
	psid, userID = s[:first], s[first+1:last]
	if !validPSID(psid) || pairing.ValidateUserID("user_id", userID) != nil {
		return "", "", false
	}
	return psid, userID, true
}

// LinkFacebook links a Facebook Login user of the site, known by their
// app-scoped id, to userID without a PIN (POST /v1/links/facebook): the
// Graph API maps the id to the person's PSID on the configured Pages.
// Every configured Page where the person has a lead is linked; the result
// is the first one's. pairing.ErrNotFound when the person never talked to
// any configured Page.
func (h *Hub) LinkFacebook(ctx context.Context, userID, appScopedID string) (pairing.Result, error) {
	if err := pairing.ValidateUserID("user_id", userID); err != nil {
		return pairing.Result{}, err
	}
	if !isDigits(appScopedID) || len(appScopedID) > 32 {
		return pairing.Result{}, &pairing.FieldError{Field: "app_scoped_id", Reason: "must be a numeric Facebook id"}
	}
	psids, err := h.psidsOf(ctx, appScopedID)
	if err != nil {
		return pairing.Result{}, err
	}
	var res pairing.Result
	linked := false
	for _, p := range h.pages {
		psid, ok := psids[p.cfg.PageID]
		if !ok {
			continue
		}
		key := pairing.LeadKey{Channel: p.cfg.Name, ExternalID: psid}
		st, err := h.svc.Status(ctx, key)
		if err != nil {
			return pairing.Result{}, err
		}
		if st.Lead.ID == 0 {
			continue
		}
		r, err := h.svc.LinkLead(ctx, key, userID)
		if !linked {
			if err != nil {
				return pairing.Result{}, err
			}
			res, linked = r, true
			continue
		}
		if err != nil {
			h.log.Info("facebook link: another page's lead not linked", "channel", p.cfg.Name, "err", err)
		}
	}
	if !linked {
		return pairing.Result{}, pairing.ErrNotFound
	}
	return res, nil
}

// psidsOf maps an app-scoped (or page-scoped) id to the person's PSIDs by
// Page id, asking through each Page until one answers.
func (h *Hub) psidsOf(ctx context.Context, id string) (map[string]string, error) {
	var outage error
	for _, p := range h.pages {
		ids, err := p.graph.idsForPages(ctx, id)
		if err != nil {
			if !errors.Is(err, ErrRejected) && outage == nil {
				outage = &pairing.ChannelError{Err: pairing.ErrChannelFailed, Channel: p.cfg.Name, Cause: err}
			}
			continue
		}
		out := map[string]string{}
		for _, d := range ids {
			if validPSID(d.ID) {
				out[d.Page.ID] = d.ID
			}
		}
		return out, nil
	}
	if outage != nil {
		return nil, outage
	}
	return nil, pairing.ErrNotFound
}

// matchIDs joins a new lead to the same person's leads on the other
// configured Pages (ID matching). It is best effort: failures are logged.
func (h *Hub) matchIDs(ctx context.Context, p *page, key pairing.LeadKey) {
	ids, err := p.graph.idsForPages(ctx, key.ExternalID)
	if err != nil {
		h.log.Warn("id matching: ids_for_pages", "channel", p.cfg.Name, "err", err)
		return
	}
	for _, d := range ids {
		other, ok := h.byID[d.Page.ID]
		if !ok || other == p || !validPSID(d.ID) {
			continue
		}
		existing := pairing.LeadKey{Channel: other.cfg.Name, ExternalID: d.ID}
		st, err := h.svc.Status(ctx, existing)
		if err != nil || st.Lead.ID == 0 {
			continue
		}
		if err := h.svc.JoinLeads(ctx, key, existing); err != nil {
			h.log.Info("id matching: leads not joined", "channel", p.cfg.Name, "other", other.cfg.Name, "err", err)
			continue
		}
		h.log.Info("id matching: leads joined", "channel", p.cfg.Name, "other", other.cfg.Name)
	}
}
