package api

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Metrics are the API's counters, written in the Prometheus text format
// by hand (no client library). Label values come from code (route
// patterns, status numbers, outcome codes), never from requests, so the
// number of series stays small.
type Metrics struct {
	mu        sync.Mutex
	requests  map[[3]string]uint64 // method, route, status
	durations map[string]*summary  // route
	outcomes  map[string]uint64    // authorize outcome or error code
	panics    uint64
}

type summary struct {
	sum   float64
	count uint64
}

// NewMetrics returns empty counters.
func NewMetrics() *Metrics {
	return &Metrics{requests: map[[3]string]uint64{}, durations: map[string]*summary{}, outcomes: map[string]uint64{}}
}

func (m *Metrics) request(method, route string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[3]string{method, route, strconv.Itoa(status)}]++
	s := m.durations[route]
	if s == nil {
		s = &summary{}
		m.durations[route] = s
	}
	s.sum += d.Seconds()
	s.count++
}

// authorizeOutcome counts a decided answer by outcome, a refusal by its
// error code.
func (m *Metrics) authorizeOutcome(res pairing.Result, err error) {
	label := string(res.Outcome)
	if err != nil {
		_, d, _ := describe(err, time.Time{})
		label = d.Code
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[label]++
}

func (m *Metrics) recordPanic() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.panics++
}

// WriteTo writes every series in the text exposition format 0.0.4, sorted
// so the output is stable.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cw := &countingWriter{w: bufio.NewWriter(w)}

	fmt.Fprintln(cw, "# HELP pairingd_http_requests_total HTTP requests by method, route pattern and status.")
	fmt.Fprintln(cw, "# TYPE pairingd_http_requests_total counter")
	reqKeys := make([][3]string, 0, len(m.requests))
	for k := range m.requests {
		reqKeys = append(reqKeys, k)
	}
	slices.SortFunc(reqKeys, func(a, b [3]string) int {
		return strings.Compare(strings.Join(a[:], "\x00"), strings.Join(b[:], "\x00"))
	})
	for _, k := range reqKeys {
		fmt.Fprintf(cw, "pairingd_http_requests_total{method=%s,route=%s,status=%s} %d\n",
			quote(k[0]), quote(k[1]), quote(k[2]), m.requests[k])
	}

	fmt.Fprintln(cw, "# HELP pairingd_http_request_duration_seconds Time to answer, by route pattern.")
	fmt.Fprintln(cw, "# TYPE pairingd_http_request_duration_seconds summary")
	for _, route := range sortedKeys(m.durations) {
		s := m.durations[route]
		fmt.Fprintf(cw, "pairingd_http_request_duration_seconds_sum{route=%s} %g\n", quote(route), s.sum)
		fmt.Fprintf(cw, "pairingd_http_request_duration_seconds_count{route=%s} %d\n", quote(route), s.count)
	}

	fmt.Fprintln(cw, "# HELP pairingd_authorize_outcomes_total POST /v1/authorize answers by outcome or error code.")
	fmt.Fprintln(cw, "# TYPE pairingd_authorize_outcomes_total counter")
	for _, o := range sortedKeys(m.outcomes) {
		fmt.Fprintf(cw, "pairingd_authorize_outcomes_total{outcome=%s} %d\n", quote(o), m.outcomes[o])
	}

	fmt.Fprintln(cw, "# HELP pairingd_http_panics_total Handler panics recovered (each is a bug).")
	fmt.Fprintln(cw, "# TYPE pairingd_http_panics_total counter")
	fmt.Fprintf(cw, "pairingd_http_panics_total %d\n", m.panics)

	if err := cw.w.Flush(); err != nil && cw.err == nil {
		cw.err = err
	}
	return cw.n, cw.err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quote escapes a label value: backslash, double quote and newline.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

type countingWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
