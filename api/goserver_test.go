package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAnswersBeforePairingdSeesTheRequest shows the answers Go's HTTP
// server writes itself, in plain text, for requests it cannot parse: no
// handler of pairingd runs, so they cannot have the JSON error shape
// (docs/operations.md, "Answers before pairingd"). The real server of
// NewHTTPServer with the API's handler is used.
func TestAnswersBeforePairingdSeesTheRequest(t *testing.T) {
	e := newEnv(t)
	h, err := New(Config{}, Deps{Service: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(Config{Listen: "127.0.0.1:0"}, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	send := func(raw string) (*http.Response, string) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	bigHeader := "X-Big: " + strings.Repeat("a", 64<<10+8<<10) + "\r\n"
	for _, c := range []struct {
		name, raw string
		status    int
		body      string
	}{
		{"malformed request line", "NOT A REQUEST\r\n\r\n", 400, "400 Bad Request"},
		{"no Host header", "GET /healthz HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header"},
		{"header over maxHeaderBytes", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + bigHeader + "\r\n", 431, "431 Request Header Fields Too Large"},
		{"unknown transfer encoding", "POST /v1/authorize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Unsupported transfer encoding"},
	} {
		res, body := send(c.raw)
		if res.StatusCode != c.status || body != c.body || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %d %q %q, want %d %q text/plain", c.name, res.StatusCode, res.Header.Get("Content-Type"), body, c.status, c.body)
		}
	}
	// A request Go can parse reaches pairingd: the JSON shape.
	res, body := send("GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("parsed request: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
}
