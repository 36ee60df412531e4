package main

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var metricsListenRE = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// TestBinaryMetricsListener: with server.metrics_listen, the real binary
// serves /metrics on that address only, and stops both listeners on
// SIGTERM.
func TestBinaryMetricsListener(t *testing.T) {
	dir := t.TempDir()
	env := baseEnv(dir, "PAIRINGD_SERVER_METRICS_LISTEN=127.0.0.1:0")
	in := start(t, dir, env)
	m := metricsListenRE.FindStringSubmatch(in.logs())
	if m == nil {
		t.Fatalf("no metrics listening line:\n%s", in.logs())
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(in.base + "/metrics"); code != http.StatusNotFound || strings.Contains(body, "pairingd_") {
		t.Fatalf("/metrics on the public listener: %d %.200s", code, body)
	}
	if code, _ := get(in.base + "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz on the public listener: %d", code)
	}
	code, body := get("http://" + m[1] + "/metrics")
	// The public listener's requests are counted in the series served here.
	if code != http.StatusOK || !strings.Contains(body, "pairingd_build_info{") || !strings.Contains(body, `pairingd_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Fatalf("/metrics on the metrics listener: %d %.300s", code, body)
	}
	if code, _ := get("http://" + m[1] + "/healthz"); code != http.StatusNotFound {
		t.Fatalf("healthz on the metrics listener: %d, want 404", code)
	}
	in.stop()
	if _, err := http.Get("http://" + m[1] + "/metrics"); err == nil {
		t.Fatal("the metrics listener still answers after the stop")
	}

	// A wrong address is a configuration error, before anything starts.
	cmd := exec.Command(binPath, "serve")
	cmd.Dir, cmd.Env = dir, baseEnv(dir, "PAIRINGD_SERVER_METRICS_LISTEN=9090")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(stderr.String(), "server.metrics_listen") {
		t.Fatalf("metrics_listen 9090: %v, exit %d, %s", err, cmd.ProcessState.ExitCode(), stderr.String())
	}
}
