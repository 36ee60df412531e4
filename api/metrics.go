package api

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pairingd/pairingd/pairing"
)

// Metrics are the process's Prometheus series: HTTP requests, authorize
// outcomes, panics, build info, the Go runtime and process, and what the
// background workers did (it is the pairing.Observer cmd hands to them).
// Label values come from code (route patterns, status numbers, outcome
// codes, result words) or configuration (channel names), never from
// requests, so the number of series stays small.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	outcomes  *prometheus.CounterVec
	panics    prometheus.Counter
	build     *prometheus.GaugeVec
	jobs      *prometheus.CounterVec
	sends     *prometheus.CounterVec
}

var _ pairing.Observer = (*Metrics)(nil)

// BuildInfo is what pairingd_build_info reports. Empty fields show as
// "unknown"; GoVersion defaults to the running runtime's.
type BuildInfo struct {
	Version   string
	Commit    string
	GoVersion string
}

// durationBuckets reach below the client library's default 5ms: most
// answers on SQLite take about a millisecond.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics returns the series, at zero, on their own registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairingd_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pairingd_http_request_duration_seconds", Help: "Time to answer, by method, route pattern and status class (2xx, 4xx, 5xx).",
			Buckets: durationBuckets,
		}, []string{"method", "route", "status_class"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairingd_authorize_outcomes_total", Help: "POST /v1/authorize answers by outcome or error code.",
		}, []string{"outcome"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pairingd_http_panics_total", Help: "Handler panics recovered (each is a bug).",
		}),
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pairingd_build_info", Help: "Always 1; the labels say which build runs.",
		}, []string{"version", "commit", "go_version"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairingd_queue_jobs_finished_total",
			Help: "Tries of the durable queues' jobs (inbound, notify, site_events) by result: done, retried, failed (given up), released (handed back).",
		}, []string{"queue", "result"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pairingd_platform_sends_total",
			Help: "Messages sent to a messaging platform by channel, kind (notification, pin) and result (delivered, retried, rate_limited, blocked, failed).",
		}, []string{"channel", "kind", "result"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.durations, m.outcomes, m.panics, m.build, m.jobs, m.sends,
	)
	m.panics.Add(0) // shown at 0, so an alert can compare with it
	return m
}

// Registry is where the series live; a caller may register its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// setBuild makes b the one build-info series.
func (m *Metrics) setBuild(b BuildInfo) {
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	m.build.Reset()
	m.build.WithLabelValues(orUnknown(b.Version), orUnknown(b.Commit), b.GoVersion).Set(1)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (m *Metrics) request(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.durations.WithLabelValues(method, route, strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

// authorizeOutcome counts a decided answer by outcome, a refusal by its
// error code.
func (m *Metrics) authorizeOutcome(res pairing.Result, err error) {
	label := string(res.Outcome)
	if err != nil {
		_, d, _ := describe(err, time.Time{})
		label = d.Code
	}
	m.outcomes.WithLabelValues(label).Inc()
}

func (m *Metrics) recordPanic() { m.panics.Inc() }

// JobFinished implements pairing.Observer.
func (m *Metrics) JobFinished(queue, result string) {
	m.jobs.WithLabelValues(queue, result).Inc()
}

// PlatformSend implements pairing.Observer.
func (m *Metrics) PlatformSend(channel, kind, result string) {
	m.sends.WithLabelValues(channel, kind, result).Inc()
}
