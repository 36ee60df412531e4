package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
	"github.com/pairingd/pairingd/templates"
)

// The benchmarks run the provider behind the real API server (Echo, its
// middleware, the per-IP limits of the page routes) on real SQLite in a
// temporary directory, as the default deployment runs, with concurrent
// clients over HTTP. They report exchanges (or renders) per second and
// the latency percentiles of single requests. docs/performance.md has
// the commands and figures.

const (
	benchRedirect = "https://shop.example/callback"
	benchVerifier = "bench-verifier-0123456789-0123456789-0123456789"
)

type benchEnv struct {
	st       *store.Store
	srv      *httptest.Server
	p        *Provider
	clientID string
	secret   string
	subjects []string
	persons  []int64
}

func newBenchEnv(b *testing.B, alg string) *benchEnv {
	b.Helper()
	ctx := context.Background()
	st := storetest.SQLite(b)
	svc, err := pairing.New(st, pairing.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		b.Fatal(err)
	}
	si := svc.EnableSignIn(st, 0, map[string]string{"telegram": "telegram"})
	texts, err := templates.Load("", "en")
	if err != nil {
		b.Fatal(err)
	}
	pages, err := templates.LoadPages("")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	if err := EnsureSigningKey(ctx, st, now, alg); err != nil {
		b.Fatal(err)
	}
	svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Links: tmeLinks{}})
	cfg := DefaultConfig()
	cfg.SigningAlgorithm = alg
	cfg.codeTTL = 10 * time.Minute // codes are made before the timer starts
	srvURL := "http://pairing.bench"
	p, err := New(srvURL, cfg, Deps{
		Store: st, SignIns: si, Channels: []Channel{{Name: "telegram", Type: "telegram"}}, Texts: texts, Pages: pages,
		Assets: templates.PageAsset(""), Secret: []byte(strings.Repeat("s", 32)),
	})
	if err != nil {
		b.Fatal(err)
	}
	var hooks []api.Webhook
	for _, r := range p.Routes() {
		hooks = append(hooks, api.Webhook{Method: r.Method, Path: r.Path, Handler: r.Handler, Unlimited: !r.Browser, Page: r.Browser})
	}
	acfg := api.DefaultConfig()
	acfg.PublicRatePerSecond = 1e9 // one client address sends everything here (the burst is twice the rate)
	e, err := api.New(acfg, api.Deps{Service: svc, Webhooks: hooks})
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{st: st, p: p, srv: httptest.NewServer(e), clientID: "bench-client", secret: "bench-secret-0123456789"}
	b.Cleanup(env.srv.Close)
	if err := st.CreateOIDCClient(ctx, store.OIDCClient{ID: env.clientID, Name: "Shop", SecretHash: hash(env.secret),
		RedirectURIs: []string{benchRedirect}, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	// People signing in: a lead (with a profile) and a subject each.
	for i := range 100 {
		lead, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: strconv.Itoa(1000 + i)},
			pairing.Profile{FirstName: "Ann", LastName: "Lee", Username: "ann" + strconv.Itoa(i), Locale: "en"}, now)
		if err != nil {
			b.Fatal(err)
		}
		sub, err := si.Subject(ctx, lead.PersonID)
		if err != nil {
			b.Fatal(err)
		}
		env.persons, env.subjects = append(env.persons, lead.PersonID), append(env.subjects, sub)
	}
	return env
}

// request stores a pending authorization request as op would.
func (env *benchEnv) request(b *testing.B, ctx context.Context) string {
	sum := sha256.Sum256([]byte(benchVerifier))
	body, _ := json.Marshal(params{RedirectURI: benchRedirect, State: "st", Nonce: "n", Scopes: []string{"openid", "profile"},
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:])})
	id, err := randomID("")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	if err := env.st.CreateAuthRequest(ctx, store.AuthRequestRecord{ID: id, ClientID: env.clientID, Request: body,
		Status: pairing.SignInPending, ExpiresAt: now.Add(10 * time.Minute), CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	return id
}

// codes makes n confirmed sign-ins with their codes, in parallel (the
// writes share SQLite's group commit).
func (env *benchEnv) codes(b *testing.B, n int) []string {
	b.Helper()
	ctx := context.Background()
	out := make([]string, n)
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := env.request(b, ctx)
				now := time.Now().UTC()
				k := i % len(env.persons)
				auth := pairing.SignInAuth{PersonID: env.persons[k], Subject: env.subjects[k], AMR: []string{"chat_confirm", "telegram"}, AuthTime: now}
				if ok, err := env.st.AuthenticateSignIn(ctx, id, auth, now); err != nil || !ok {
					b.Error(err, ok)
					return
				}
				code, _ := randomID("")
				if err := env.st.SetAuthCode(ctx, id, hash(code), now.Add(10*time.Minute)); err != nil {
					b.Error(err)
					return
				}
				out[i] = code
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return out
}

// latencies collects the time of each request from every client.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration, unit string) {
	slices.Sort(l.all)
	if len(l.all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(l.all[min(len(l.all)-1, int(float64(len(l.all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), unit+"/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// benchClients is how many requests are in flight at once: a site's
// servers exchanging codes for many people signing in.
const benchClients = 16

// runClients sends b.N requests from benchClients clients; do sends the
// i-th.
func runClients(b *testing.B, unit string, do func(c *http.Client, i int) error) {
	var lat latencies
	var next sync.Mutex
	i := 0
	take := func() int {
		next.Lock()
		defer next.Unlock()
		i++
		return i - 1
	}
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	began := time.Now()
	var wg sync.WaitGroup
	for range benchClients {
		wg.Go(func() {
			var mine []time.Duration
			for {
				k := take()
				if k >= b.N {
					break
				}
				t := time.Now()
				if err := do(c, k); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t))
			}
			lat.add(mine)
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	lat.report(b, elapsed, unit)
	// CPU time of the whole process (server and clients) per request: on
	// a shared machine the rate above depends on what else runs, this
	// much less; two cores give at most 2s / cpu-ms requests a second.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the user and system CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTokenExchange: POST /oidc/token with a code, its PKCE
// verifier and the client's secret, answered with an access token and a
// signed ID token with the profile and messengers claims.
func BenchmarkTokenExchange(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			env := newBenchEnv(b, alg)
			codes := env.codes(b, b.N)
			runClients(b, "exchanges", func(c *http.Client, i int) error {
				form := url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {benchRedirect}, "code_verifier": {benchVerifier}}
				req, _ := http.NewRequest(http.MethodPost, env.srv.URL+pathToken, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(env.clientID, env.secret)
				res, err := c.Do(req)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				var out struct {
					IDToken string `json:"id_token"`
				}
				if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || out.IDToken == "" {
					return errStatus(res.StatusCode, err)
				}
				return nil
			})
		})
	}
}

// BenchmarkSignInPage: the first GET of a sign-in page (binds the
// browser, issues a chat token per channel, fixes the match code, draws
// the QR code).
func BenchmarkSignInPage(b *testing.B) {
	env := newBenchEnv(b, AlgRS256)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = env.request(b, context.Background())
	}
	runClients(b, "renders", func(c *http.Client, i int) error {
		res, err := c.Get(env.srv.URL + signInPath + ids[i])
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(body), "t.me/") {
			return errStatus(res.StatusCode, err)
		}
		return nil
	})
}

type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string { return "status " + strconv.Itoa(e.code) + ": " + errText(e.err) }

func errStatus(code int, err error) error { return statusError{code, err} }

func errText(err error) string {
	if err == nil {
		return "unexpected answer"
	}
	return err.Error()
}

// tmeLinks is a Telegram bot's deep links.
type tmeLinks struct{}

func (tmeLinks) SendPIN(context.Context, pairing.IssuedPIN) error { return nil }
func (tmeLinks) DeepLinkURL(token string) (string, error) {
	return "https://t.me/pairing_bench_bot?start=" + token, nil
}
