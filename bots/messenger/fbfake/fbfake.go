// Package fbfake is an in-process fake of the parts of Meta's Graph API
// that pairingd's Messenger adapter calls: the Send API, the Messenger
// Profile API, Account Linking's PSID lookup, ID matching, the User
// Profile API and the handover protocol. It checks access tokens and
// appsecret_proof like Graph does, validates messages against Messenger's
// limits, and answers failures with Meta's error shape. Tests point a
// Page's GraphURL at URL().
package fbfake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Endpoint names one Graph API call the fake serves, for FailNextOn.
type Endpoint string

// The endpoints.
const (
	EndpointSend             Endpoint = "POST /me/messages"
	EndpointMessengerProfile Endpoint = "POST /me/messenger_profile"
	EndpointAccountLinking   Endpoint = "GET /me"
	EndpointIDsForPages      Endpoint = "GET /{id}/ids_for_pages"
	EndpointUserProfile      Endpoint = "GET /{psid}"
	EndpointPassThread       Endpoint = "POST /me/pass_thread_control"
	EndpointRequestThread    Endpoint = "POST /me/request_thread_control"
)

// SentMessage is one accepted Send API call.
type SentMessage struct {
	PageID        string // the Page whose token sent it ("" if no page was added)
	RecipientID   string
	MessagingType string
	Tag           string
	// Text is message.text, or the button template's text.
	Text         string
	Buttons      []Button
	QuickReplies []QuickReply
	Raw          json.RawMessage
}

// Button is a template button.
type Button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Payload string `json:"payload"`
}

// QuickReply is one quick reply.
type QuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// Profile is what the User Profile API returns for a PSID.
type Profile struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Locale    string `json:"locale,omitempty"`
}

// ThreadCall is one handover call: Kind is "pass" or "request".
type ThreadCall struct {
	Kind        string
	PageID      string
	PSID        string
	TargetAppID string
	Metadata    string
}

// Request is one request the fake received, secrets removed from Query.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	// HadProof tells whether appsecret_proof was present and right.
	HadProof bool
}

type page struct{ id, token, secret string }

type linkToken struct{ pageID, psid string }

type failure struct {
	code, subcode int
	msg           string
}

// Server is the fake Graph API.
type Server struct {
	srv *httptest.Server

	mu          sync.Mutex
	pages       map[string]page // by token
	sent        []SentMessage
	changed     chan struct{}
	profiles    map[string]Profile
	linking     map[string]linkToken
	ids         map[string]map[string]string
	fails       map[Endpoint][]failure
	closed      map[string]bool // PSIDs whose 24-hour window is closed
	msgProfiles []json.RawMessage
	threads     []ThreadCall
	requests    []Request
	trace       int
}

// New starts a fake Graph API, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		pages: map[string]page{}, changed: make(chan struct{}), profiles: map[string]Profile{},
		linking: map[string]linkToken{}, ids: map[string]map[string]string{}, fails: map[Endpoint][]failure{},
		closed: map[string]bool{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the Graph base URL to configure (with a version path, like the
// real one).
func (s *Server) URL() string { return s.srv.URL + "/v21.0" }

// Close stops the server early (to test an unreachable Graph API).
func (s *Server) Close() { s.srv.Close() }

// AddPage makes the fake accept a Page's token, and check appsecret_proof
// with its app secret. Until a Page is added any token is accepted.
func (s *Server) AddPage(pageID, accessToken, appSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[accessToken] = page{id: pageID, token: accessToken, secret: appSecret}
}

// snapshot copies a recorded list under the lock.
func snapshot[T any](s *Server, list *[]T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]T(nil), *list...)
}

// Sent returns the messages accepted so far.
func (s *Server) Sent() []SentMessage { return snapshot(s, &s.sent) }

// WaitSent waits until at least n messages were accepted and returns them.
func (s *Server) WaitSent(ctx context.Context, n int) ([]SentMessage, error) {
	for {
		s.mu.Lock()
		if len(s.sent) >= n {
			out := append([]SentMessage(nil), s.sent...)
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return s.Sent(), fmt.Errorf("fbfake: waited for %d messages: %w", n, ctx.Err())
		case <-ch:
		}
	}
}

// FailNext makes the next Send API call fail with this Graph error code
// and subcode (0: none).
func (s *Server) FailNext(code, subcode int) { s.FailNextOn(EndpointSend, code, subcode) }

// FailNextOn makes the next call of one endpoint fail. Calls queue up.
func (s *Server) FailNextOn(ep Endpoint, code, subcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[ep] = append(s.fails[ep], failure{code: code, subcode: subcode})
}

// CloseWindow makes RESPONSE and UPDATE messages to psid fail as outside
// the 24-hour window (10/2018278); MESSAGE_TAG messages still pass.
func (s *Server) CloseWindow(psid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed[psid] = true
}

// SetAccountLinkingToken makes GET /me?fields=recipient resolve token to
// psid for every Page.
func (s *Server) SetAccountLinkingToken(token, psid string) {
	s.SetAccountLinkingTokenFor("", token, psid)
}

// SetAccountLinkingTokenFor resolves token only with pageID's token.
func (s *Server) SetAccountLinkingTokenFor(pageID, token, psid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linking[token] = linkToken{pageID: pageID, psid: psid}
}

// SetIDsForPages sets what GET /{id}/ids_for_pages answers: page id ->
// the person's PSID on that Page.
func (s *Server) SetIDsForPages(id string, byPage map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = byPage
}

// SetProfile sets what GET /{psid} answers.
func (s *Server) SetProfile(psid string, p Profile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[psid] = p
}

// MessengerProfiles returns the bodies posted to /me/messenger_profile.
func (s *Server) MessengerProfiles() []json.RawMessage { return snapshot(s, &s.msgProfiles) }

// ThreadCalls returns the pass and request thread control calls.
func (s *Server) ThreadCalls() []ThreadCall { return snapshot(s, &s.threads) }

// Requests returns every request received, in order.
func (s *Server) Requests() []Request { return snapshot(s, &s.requests) }

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	q := r.URL.Query()
	pg, authErr := s.authenticate(q)
	s.record(r.Method, path, q, authErr == nil)
	if authErr != nil {
		s.writeError(w, authErr.code, authErr.subcode, authErr.msg)
		return
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var ep Endpoint
	switch {
	case r.Method == http.MethodPost && path == "/me/messages":
		ep = EndpointSend
	case r.Method == http.MethodPost && path == "/me/messenger_profile":
		ep = EndpointMessengerProfile
	case r.Method == http.MethodPost && path == "/me/pass_thread_control":
		ep = EndpointPassThread
	case r.Method == http.MethodPost && path == "/me/request_thread_control":
		ep = EndpointRequestThread
	case r.Method == http.MethodGet && path == "/me":
		ep = EndpointAccountLinking
	case r.Method == http.MethodGet && len(segs) == 2 && segs[1] == "ids_for_pages":
		ep = EndpointIDsForPages
	case r.Method == http.MethodGet && len(segs) == 1 && segs[0] != "me" && segs[0] != "":
		ep = EndpointUserProfile
	default:
		s.writeError(w, 100, 33, "Unsupported "+strings.ToLower(r.Method)+" request.")
		return
	}
	if f, ok := s.popFailure(ep); ok {
		s.writeError(w, f.code, f.subcode, f.msg)
		return
	}
	switch ep {
	case EndpointSend:
		s.send(w, r, pg)
	case EndpointMessengerProfile:
		s.messengerProfile(w, r)
	case EndpointPassThread, EndpointRequestThread:
		s.threadControl(w, r, pg, ep)
	case EndpointAccountLinking:
		s.accountLinking(w, q, pg)
	case EndpointIDsForPages:
		s.idsForPages(w, segs[0])
	case EndpointUserProfile:
		s.userProfile(w, segs[0])
	}
}

// authenticate checks access_token and appsecret_proof like Graph does.
func (s *Server) authenticate(q url.Values) (page, *failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := q.Get("access_token")
	if token == "" {
		return page{}, &failure{code: 104, msg: "An access token is required to request this resource."}
	}
	if len(s.pages) == 0 {
		return page{token: token}, nil
	}
	pg, ok := s.pages[token]
	if !ok {
		return page{}, &failure{code: 190, msg: "Invalid OAuth access token - Cannot parse access token"}
	}
	if pg.secret != "" && q.Get("appsecret_proof") != proof(pg.secret, token) {
		return page{}, &failure{code: 100, msg: "Invalid appsecret_proof provided in the API argument"}
	}
	return pg, nil
}

func proof(secret, token string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) record(method, path string, q url.Values, ok bool) {
	clean := url.Values{}
	for k, v := range q {
		if k == "access_token" || k == "appsecret_proof" || k == "account_linking_token" {
			clean[k] = []string{"REDACTED"}
			continue
		}
		clean[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: method, Path: path, Query: clean, HadProof: ok && q.Get("appsecret_proof") != ""})
}

func (s *Server) popFailure(ep Endpoint) (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.fails[ep]
	if len(q) == 0 {
		return failure{}, false
	}
	s.fails[ep] = q[1:]
	return q[0], true
}
