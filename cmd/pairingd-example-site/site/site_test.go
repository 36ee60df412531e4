package site

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fakeIssuer answers discovery only: enough for the site's own checks,
// which refuse before any token is asked for. The whole sign-in against
// real pairingd is tested in cmd/pairingd (TestDemoSignIn).
func fakeIssuer(t *testing.T) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/oidc/authorize", "token_endpoint": srv.URL + "/oidc/token",
			"jwks_uri": srv.URL + "/oidc/keys", "end_session_endpoint": srv.URL + "/oidc/end_session",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newSite(t *testing.T) (*Site, string) {
	iss := fakeIssuer(t)
	s, err := New(context.Background(), Config{Issuer: iss.URL, ClientID: "cid", ClientSecret: "sec", APIKey: "key", BaseURL: "http://127.0.0.1:3000"})
	if err != nil {
		t.Fatal(err)
	}
	return s, iss.URL
}

func do(s *Site, method, target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func TestLoginStartsCodeFlowWithPKCE(t *testing.T) {
	s, iss := newSite(t)
	w := do(s, "GET", "/login?iss="+url.QueryEscape(iss)+"&login_hint=hint-1")
	loc, err := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), iss+"/oidc/authorize?") {
		t.Fatalf("login: %d %q", w.Code, w.Header().Get("Location"))
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("login_hint") != "hint-1" || q.Get("redirect_uri") != "http://127.0.0.1:3000/callback" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorization request %v", q)
	}
	var state *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == "site_state" {
			state = c
		}
	}
	if state == nil || state.Value != q.Get("state") || !state.HttpOnly {
		t.Fatalf("state cookie %+v", state)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
}

func TestSiteRefusals(t *testing.T) {
	s, iss := newSite(t)
	// A third-party-initiated login from an issuer the site does not use.
	if w := do(s, "GET", "/login?iss="+url.QueryEscape("https://evil.example")); w.Code != http.StatusBadRequest {
		t.Fatalf("foreign iss: %d", w.Code)
	}
	login := do(s, "GET", "/login")
	state := login.Result().Cookies()[0]
	st := url.QueryEscape(state.Value)
	for _, tc := range []struct {
		name    string
		target  string
		cookies []*http.Cookie
		want    int
	}{
		{"no state cookie", "/callback?code=c&state=" + st, nil, http.StatusBadRequest},
		{"state of another browser", "/callback?code=c&state=other", []*http.Cookie{state}, http.StatusBadRequest},
	} {
		if w := do(s, "GET", tc.target, tc.cookies...); w.Code != tc.want {
			t.Errorf("%s: %d, want %d\n%s", tc.name, w.Code, tc.want, w.Body)
		}
	}
	// A refused callback did not spend the sign-in: the right one still
	// reaches the token endpoint (which this fake issuer does not have).
	if w := do(s, "GET", "/callback?code=c&state="+st+"&iss="+url.QueryEscape(iss), state); w.Code != http.StatusBadGateway {
		t.Fatalf("callback with the right state: %d\n%s", w.Code, w.Body)
	}
	// Its state is spent now.
	if w := do(s, "GET", "/callback?code=c&state="+st, state); w.Code != http.StatusBadRequest {
		t.Fatalf("state replayed: %d", w.Code)
	}
	// An answer naming another issuer (a mix-up, RFC 9207) is refused.
	login = do(s, "GET", "/login")
	state = login.Result().Cookies()[0]
	w := do(s, "GET", "/callback?code=c&state="+url.QueryEscape(state.Value)+"&iss="+url.QueryEscape("https://evil.example"), state)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "wrong issuer") {
		t.Fatalf("wrong iss: %d\n%s", w.Code, w.Body)
	}
	// Forms need a session and its CSRF token.
	for _, path := range []string{"/account/create", "/connect", "/notify", "/logout"} {
		if w := do(s, "POST", path); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Errorf("POST %s without a session: %d %q", path, w.Code, w.Header().Get("Location"))
		}
	}
	s.mu.Lock()
	s.sessions["sid"] = &session{csrf: "right", sub: "sub-1"}
	s.mu.Unlock()
	if w := do(s, "POST", "/account/create", &http.Cookie{Name: sessionCookie, Value: "sid"}); w.Code != http.StatusForbidden {
		t.Fatalf("POST without the CSRF token: %d", w.Code)
	}
	if w := do(s, "GET", "/account", &http.Cookie{Name: sessionCookie, Value: "sid"}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Create account") {
		t.Fatalf("account page of a new person: %d\n%s", w.Code, w.Body)
	}
}
