package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

// TestMetricsHistogramAndBuildInfo: request durations are a histogram by
// method, route pattern (never the raw path) and status class; the build
// info and the Go and process collectors are served.
func TestMetricsHistogramAndBuildInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDeps(func(d *Deps) { d.Build = BuildInfo{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.99"} }))
	e.authorize(e.issue(), "")
	e.post("/v1/authorize", map[string]string{"buid": "nope", "pin": "123456"})
	e.link("secret-user-7")
	e.do(http.MethodGet, "/v1/links/secret-user-7", "")
	m := e.do(http.MethodGet, "/metrics", "").raw
	for series, want := range map[string]float64{
		`pairingd_http_request_duration_seconds_bucket{method="POST",route="/v1/authorize",status_class="2xx",le="+Inf"}`: 2,
		`pairingd_http_request_duration_seconds_bucket{method="POST",route="/v1/authorize",status_class="4xx",le="+Inf"}`: 1,
		`pairingd_http_request_duration_seconds_count{method="POST",route="/v1/authorize",status_class="4xx"}`:            1,
		`pairingd_http_request_duration_seconds_count{method="GET",route="/v1/links/:user_id",status_class="2xx"}`:        1,
		`pairingd_build_info{commit="abc123",go_version="go1.99",version="v1.2.3"}`:                                       1,
		"pairingd_http_panics_total": 0,
	} {
		if got := gauge(t, m, series); got != want {
			t.Errorf("%s = %g, want %g", series, got, want)
		}
	}
	// Every bucket of the histogram is there, up to 10s.
	for _, le := range []string{"0.001", "0.005", "0.1", "1", "10"} {
		gauge(t, m, `pairingd_http_request_duration_seconds_bucket{method="POST",route="/v1/authorize",status_class="2xx",le="`+le+`"}`)
	}
	for _, want := range []string{"# TYPE pairingd_http_request_duration_seconds histogram", "\ngo_goroutines ", "\ngo_gc_duration_seconds", "\nprocess_start_time_seconds "} {
		if !strings.Contains(m, want) {
			t.Errorf("no %q in:\n%s", want, m)
		}
	}
	if strings.Contains(m, "secret-user-7") {
		t.Fatalf("a raw path is a label:\n%s", m)
	}
	// Unset build fields say so; the Go version is the runtime's.
	e2 := newEnv(t)
	if !regexp.MustCompile(`(?m)^pairingd_build_info\{commit="unknown",go_version="go[0-9.]+\S*",version="unknown"\} 1$`).MatchString(e2.do(http.MethodGet, "/metrics", "").raw) {
		t.Fatalf("default build info:\n%s", e2.do(http.MethodGet, "/metrics", "").raw)
	}
}

// siteSender answers each event with the next error of its script.
type siteSender struct{ errs []error }

func (s *siteSender) SendEvent(context.Context, pairing.SiteEvent, []byte) error {
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

// TestMetricsWorkerCounters: the metrics are the observer of the
// notification worker, the site event worker, the inbound worker and
// the channels' sends; each try shows in its counter.
func TestMetricsWorkerCounters(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := newEnv(t, withDeps(func(d *Deps) { d.Metrics = m }), withOptions(pairing.WithObserver(m)))
	tg := &scriptedDeliverer{errs: []error{&pairing.DeliveryError{RetryAfter: time.Second, Reason: pairing.ReasonRateLimited}}}
	pins := &fakeChannel{}
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", PINs: pins, Notifications: tg, NotifyLimits: pairing.ChannelLimits{MaxText: 4096}})
	ctx := context.Background()

	// PINs: one resend delivered, one refused.
	p := e.link("u1")
	e.clock.Advance(time.Minute)
	expect(t, e.post("/v1/pins/resend", map[string]string{"buid": p.BUID}), http.StatusAccepted, "")
	pins.err = errors.New("telegram: 502")
	e.clock.Advance(time.Minute)
	expect(t, e.post("/v1/pins/resend", map[string]string{"buid": pins.sent[0].BUID}), http.StatusBadGateway, "channel_error")

	// Notifications: rate limited (retried), then delivered; a second
	// one finds the bot blocked.
	worker, err := e.svc.NewNotificationWorker(pairing.NotificationWorkerConfig{}, pairing.WithSleep(func(context.Context, time.Duration) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Notify(ctx, pairing.NotifyRequest{UserID: "u1", Text: "one"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n, err := worker.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("worker: %d %v", n, err)
		}
		e.clock.Advance(2 * time.Second)
	}
	tg.errs = []error{&pairing.DeliveryError{Blocked: true, Reason: pairing.ReasonBlocked}}
	if _, err := e.svc.Notify(ctx, pairing.NotifyRequest{UserID: "u1", Text: "two"}); err != nil {
		t.Fatal(err)
	}
	if n, err := worker.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("worker: %d %v", n, err)
	}

	// Site events: the first is refused for good (410), the next fails
	// for now, then is delivered.
	d := pairing.NewSiteEventWorker(e.store, &siteSender{errs: []error{
		fmt.Errorf("HTTP 410: %w", pairing.ErrEventRejected), errors.New("HTTP 503"),
	}}, pairing.SiteEventWorkerConfig{Clock: e.clock})
	d.Observe(m)
	for range 3 {
		if n, err := d.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("site event worker: %d %v", n, err)
		}
		e.clock.Advance(time.Hour)
	}

	// Inbound events: one handled, one that cannot be.
	in := pairing.NewInboundWorker(e.store, pairing.InboundWorkerConfig{Clock: e.clock})
	in.Observe(m)
	in.Handle("telegram", func(_ context.Context, payload []byte) error {
		if string(payload) == "bad" {
			return fmt.Errorf("no JSON: %w", pairing.ErrInboundDropped)
		}
		return nil
	})
	if err := in.Accept(ctx, []pairing.InboundEvent{{Source: "telegram", Key: "1", Group: "a", Payload: []byte("{}")}, {Source: "telegram", Key: "2", Group: "b", Payload: []byte("bad")}}); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("inbound: %d %v", n, err)
	}

	// Platform sends are reported by the channel adapters (their tests
	// check what they report); the service reports none, so the fake
	// channels above leave no series.
	m.PlatformSend("telegram", pairing.SendReply, pairing.SendBlocked)

	text := e.do(http.MethodGet, "/metrics", "").raw
	if n := strings.Count(text, "\npairingd_platform_sends_total{"); n != 1 {
		t.Errorf("%d platform send series, want the one reported:\n%s", n, text)
	}
	for series, want := range map[string]float64{
		`pairingd_platform_sends_total{channel="telegram",kind="reply",result="blocked"}`:                        1,
		`pairingd_queue_jobs_finished_total{queue="notify",result="retried"}`:                                    1,
		`pairingd_queue_jobs_finished_total{queue="notify",result="done"}`:                                       1,
		`pairingd_queue_jobs_finished_total{queue="notify",result="failed"}`:                                     1,
		`pairingd_queue_jobs_finished_total{queue="site_events",result="failed"}`:                                1,
		`pairingd_queue_jobs_finished_total{queue="site_events",result="retried"}`:                               1,
		`pairingd_queue_jobs_finished_total{queue="site_events",result="done"}`:                                  1,
		`pairingd_queue_jobs_finished_total{queue="inbound",result="done"}`:                                      1,
		`pairingd_queue_jobs_finished_total{queue="inbound",result="failed"}`:                                    1,
		`pairingd_http_requests_total{method="POST",route="/v1/pins/resend",status="202"}`:                       1,
		`pairingd_http_request_duration_seconds_count{method="POST",route="/v1/pins/resend",status_class="5xx"}`: 1,
	} {
		if got := gauge(t, text, series); got != want {
			t.Errorf("%s = %g, want %g", series, got, want)
		}
	}
}

// TestRequestID: a sane X-Request-Id is kept, anything else replaced by
// a generated one; it is echoed, in every log line of the request and in
// error answers.
func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withService(func(s *pairing.Service) Service { return &failingService{s} }))
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)

	r := e.do(http.MethodGet, "/healthz", "", header{"X-Request-Id", "lb-7f3a:9"})
	if got := r.header.Get("X-Request-Id"); got != "lb-7f3a:9" {
		t.Fatalf("echoed %q", got)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"lb-7f3a:9"`) {
		t.Fatalf("no request id in the log:\n%s", e.logs)
	}

	r = e.do(http.MethodGet, "/healthz", "")
	if !generated.MatchString(r.header.Get("X-Request-Id")) {
		t.Fatalf("generated %q", r.header.Get("X-Request-Id"))
	}
	for _, bad := range []string{"has space", "tab\there", strings.Repeat("x", 129), "é", "x\x7f"} {
		// Served directly: Go's client refuses to send some of these.
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set("X-Request-Id", bad)
		rec := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(rec, req)
		if got := rec.Header().Get("X-Request-Id"); !generated.MatchString(got) {
			t.Errorf("%q answered with id %q", bad, got)
		}
	}
	if r := e.do(http.MethodGet, "/healthz", "", header{"X-Request-Id", strings.Repeat("x", 128)}); r.header.Get("X-Request-Id") != strings.Repeat("x", 128) {
		t.Errorf("a 128-character id was replaced")
	}
	if strings.Contains(e.logs.String(), "has space") {
		t.Fatalf("a refused id was logged:\n%s", e.logs)
	}

	// An error answer names the id; every line the request logged has it.
	r = e.do(http.MethodGet, "/v1/links/fail", "", header{"X-Request-Id", "req-internal-1"})
	expect(t, r, http.StatusInternalServerError, "internal")
	if r.errField("request_id") != "req-internal-1" {
		t.Fatalf("error body %s", r.raw)
	}
	var lines []string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "hunter2") || strings.Contains(l, `"route":"/v1/links/:user_id"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 { // "request failed" with the detail, and the request line
		t.Fatalf("lines of the request:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, `"request_id":"req-internal-1"`) {
			t.Errorf("line without the request id: %s", l)
		}
	}
	r = e.do(http.MethodGet, "/no/such/route", "")
	expect(t, r, http.StatusNotFound, "not_found")
	if id := r.errField("request_id"); id == nil || id != r.header.Get("X-Request-Id") {
		t.Fatalf("404: request_id %v, header %q", id, r.header.Get("X-Request-Id"))
	}
}

// TestErrorSchemaListsEveryField: openapi.yaml's Error object names every
// field the server may write in an error answer.
func TestErrorSchemaListsEveryField(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	props := doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties
	typ := reflect.TypeFor[errorDetail]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if _, ok := props[name]; !ok {
			t.Errorf("the Error schema lacks %q", name)
		}
	}
	if _, ok := props["request_id"]; !ok {
		t.Error("no request_id in the Error schema")
	}
}

// TestMetricsListener: with server.metrics_listen set, /metrics moves to
// the metrics handler and is gone from the API's; the metrics handler
// serves nothing else, and counts the API's requests.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.MetricsListen = "127.0.0.1:9090" }))
	if e.metrics == nil {
		t.Fatal("no metrics handler with metrics_listen set")
	}
	e.authorize(e.issue(), "")
	if r := e.do(http.MethodGet, "/metrics", ""); r.status != http.StatusNotFound || strings.Contains(r.raw, "pairingd_") {
		t.Fatalf("/metrics on the API listener: %d %.200s", r.status, r.raw)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(e.metrics.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, m := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics on the metrics listener: %d %.200s", code, m)
	}
	if got := gauge(t, m, `pairingd_http_request_duration_seconds_count{method="POST",route="/v1/authorize",status_class="2xx"}`); got != 1 {
		t.Errorf("authorize requests seen by the metrics listener: %g, want 1", got)
	}
	for _, path := range []string{"/v1/links/x", "/healthz", "/openapi.yaml"} {
		if code, body := get(path); code != http.StatusNotFound {
			t.Errorf("%s on the metrics listener: %d %.100s, want 404", path, code, body)
		}
	}
	// Without metrics_listen, /metrics stays on the API listener.
	plain := newEnv(t)
	if plain.metrics != nil || plain.do(http.MethodGet, "/metrics", "").status != http.StatusOK {
		t.Fatal("/metrics is not on the API listener by default")
	}
}

func TestMetricsListenValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		listen, metrics, want string
	}{
		{"127.0.0.1:8080", "", ""},
		{"127.0.0.1:8080", "127.0.0.1:9090", ""},
		{"127.0.0.1:0", "127.0.0.1:0", ""},
		{"127.0.0.1:8080", "9090", "metrics_listen: must be empty or host:port"},
		{"127.0.0.1:8080", "127.0.0.1:8080", "metrics_listen: must differ from listen"},
	} {
		cfg := DefaultConfig()
		cfg.Listen, cfg.MetricsListen = c.listen, c.metrics
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("listen %q, metrics_listen %q: %v, want %q", c.listen, c.metrics, err, c.want)
		}
	}
}
