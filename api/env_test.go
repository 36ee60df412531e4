package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store/storetest"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// env is one API on a real pairing.Service over a real SQLite store in a
// temporary file (behind storetest's fault-injecting wrapper), served by an
// httptest server.
type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *pairing.Service
	store *storetest.FaultStore
	clock *pairingtest.Clock
	srv   *httptest.Server
	// metrics serves the metrics listener's handler (server.metrics_listen);
	// nil when /metrics is on srv.
	metrics *httptest.Server
	key     string
	logs    *syncBuffer
	extIDs  int
}

type envOption func(*envSetup)

type envSetup struct {
	pcfg  pairing.Config
	popts []pairing.Option
	cfg   Config
	deps  Deps
	wrap  func(*pairing.Service) Service
}

func withPairing(f func(*pairing.Config)) envOption { return func(s *envSetup) { f(&s.pcfg) } }
func withConfig(f func(*Config)) envOption          { return func(s *envSetup) { f(&s.cfg) } }
func withDeps(f func(*Deps)) envOption              { return func(s *envSetup) { f(&s.deps) } }
func withOptions(o ...pairing.Option) envOption {
	return func(s *envSetup) { s.popts = append(s.popts, o...) }
}

// withService puts a wrapper around the real service (to inject faults).
func withService(w func(*pairing.Service) Service) envOption {
	return func(s *envSetup) { s.wrap = w }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	setup := envSetup{pcfg: pairing.Config{Secret: []byte(strings.Repeat("k", 32)), LinkURL: "https://site.example/pair?buid={buid}"}}
	for _, o := range opts {
		o(&setup)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		// No timestamps: their digits could look like a PIN in the
		// no-secrets-in-logs test.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	st := storetest.SQLiteWithFaults(t)
	clk := pairingtest.NewClock(t0)
	svc, err := pairing.New(st, setup.pcfg, append([]pairing.Option{pairing.WithClock(clk), pairing.WithLogger(log)}, setup.popts...)...)
	if err != nil {
		t.Fatal(err)
	}
	deps := setup.deps
	deps.Service, deps.Log, deps.Clock = svc, log, clk
	if setup.wrap != nil {
		deps.Service = setup.wrap(svc)
	}
	h, err := NewHandlers(setup.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.API)
	t.Cleanup(srv.Close)
	var metrics *httptest.Server
	if h.Metrics != nil {
		metrics = httptest.NewServer(h.Metrics)
		t.Cleanup(metrics.Close)
	}
	_, secret, err := svc.CreateAPIKey(context.Background(), "site")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: context.Background(), svc: svc, store: st, clock: clk, srv: srv, metrics: metrics, key: secret, logs: logs}
}

// issue gives a new Telegram lead a PIN.
func (e *env) issue() pairing.IssuedPIN {
	e.t.Helper()
	e.extIDs++
	return e.issueFor(strings.Repeat("1", e.extIDs))
}

func (e *env) issueFor(ext string) pairing.IssuedPIN {
	e.t.Helper()
	p, err := e.svc.IssuePIN(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: ext},
		pairing.Profile{FirstName: "Ann", Username: "ann", Locale: "en"}, pairing.IssueOptions{Force: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// resp is an answer with its body decoded.
type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// errCode is the error.code of an error answer.
func (r resp) errCode() string {
	if m, ok := r.body["error"].(map[string]any); ok {
		s, _ := m["code"].(string)
		return s
	}
	return ""
}

func (r resp) errField(name string) any {
	if m, ok := r.body["error"].(map[string]any); ok {
		return m[name]
	}
	return nil
}

func (r resp) str(name string) string {
	s, _ := r.body[name].(string)
	return s
}

type header struct{ k, v string }

// do sends a request with the env's key (unless a header overrides
// Authorization) and JSON content type when there is a body.
func (e *env) do(method, path, body string, hdrs ...header) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range hdrs {
		if h.v == "" {
			req.Header.Del(h.k)
		} else {
			req.Header.Set(h.k, h.v)
		}
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.body); err != nil {
			e.t.Fatalf("answer is not JSON: %v: %q", err, b)
		}
	}
	return out
}

// post sends a JSON body built from v.
func (e *env) post(path string, v any, hdrs ...header) resp {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(http.MethodPost, path, string(b), hdrs...)
}

func (e *env) authorize(p pairing.IssuedPIN, userID string) resp {
	e.t.Helper()
	body := map[string]string{"buid": p.BUID, "pin": p.PIN}
	if userID != "" {
		body["user_id"] = userID
	}
	return e.post("/v1/authorize", body)
}

// link links a fresh person to userID through authorize and returns its PIN.
func (e *env) link(userID string) pairing.IssuedPIN {
	e.t.Helper()
	p := e.issue()
	if r := e.authorize(p, userID); r.str("outcome") != "linked" {
		e.t.Fatalf("link %s: %d %s", userID, r.status, r.raw)
	}
	return p
}

// expect fails unless the answer has the status and, for errors, the code.
func expect(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode() != code {
		t.Fatalf("got %d %q, want %d %q; body %s", r.status, r.errCode(), status, code, r.raw)
	}
}

// snapshot is the state a refused request must leave alone.
type snapshot struct {
	persons, siteEvents, audit int
	attempts                   int
	lockedUntil, pinUsedAt     time.Time
	userID, buidHash, pinHash  string
}

func (e *env) snap(p pairing.IssuedPIN) snapshot {
	e.t.Helper()
	wu, err := e.store.WebUserByPerson(e.ctx, p.Lead.PersonID)
	if err != nil {
		e.t.Fatal(err)
	}
	return snapshot{
		persons: e.store.Persons(), siteEvents: len(e.store.SiteEvents()), audit: len(e.store.Audit()),
		attempts: wu.FailedAttempts, lockedUntil: wu.LockedUntil, pinUsedAt: wu.PINUsedAt,
		userID: wu.UserID, buidHash: string(wu.BUIDHash), pinHash: string(wu.PINHash),
	}
}

// unchanged fails if anything moved; with allowAudit the audit trail may
// have grown (a refused authorize is audited on purpose).
func (e *env) unchanged(before snapshot, p pairing.IssuedPIN, allowAudit bool) {
	e.t.Helper()
	after := e.snap(p)
	if allowAudit {
		after.audit = before.audit
	}
	if after != before {
		e.t.Fatalf("state changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
