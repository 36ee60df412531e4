package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
)

// rssMB reads a process's resident memory.
func rssMB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skip("no /proc: resident memory cannot be read here")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestBinarySlowUnsignedUploadsStayBounded is the hostile test's finding:
// slow Messenger deliveries with well-formed but wrong signatures, each
// declaring and sending almost 1 MiB and then holding the last byte, once
// 290 from one address and once 200 from 200 addresses. Memory stays within
// 50 MB of idle, and /healthz and POST /v1/authorize from another address
// answer within a second meanwhile.
func TestBinarySlowUnsignedUploadsStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	fb := fbfake.New(t)
	const pageID, token, secret = "1001", "page-token-xyz", "app-secret-abc"
	fb.AddPage(pageID, token, secret)
	dir := t.TempDir()
	env := baseEnv(dir,
		"PAIRINGD_CHANNELS_0_NAME=fb-shop",
		"PAIRINGD_CHANNELS_0_TYPE=messenger",
		"PAIRINGD_CHANNELS_0_LINK_NOTICES=false", // link notices have their own tests (e2e_botfirst_test.go)
		"PAIRINGD_CHANNELS_0_PAGE_ID="+pageID,
		"PAIRINGD_CHANNELS_0_PAGE_ACCESS_TOKEN="+token,
		"PAIRINGD_CHANNELS_0_APP_ID=42",
		"PAIRINGD_CHANNELS_0_APP_SECRET="+secret,
		"PAIRINGD_CHANNELS_0_VERIFY_TOKEN=verify-me",
		"PAIRINGD_CHANNELS_0_GRAPH_URL="+fb.URL(),
		// Under the per-address request rate, as in the hostile test.
		"PAIRINGD_SERVER_PUBLIC_RATE_PER_SECOND=100000", // and a burst of twice that
	)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)
	addr := strings.TrimPrefix(in.base, "http://")
	_, port, _ := net.SplitHostPort(addr)

	answersQuickly := func(what string) {
		t.Helper()
		began := time.Now()
		if code, _ := in.call(http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
			t.Fatalf("%s: healthz %d", what, code)
		}
		if code, body := in.call(http.MethodPost, "/v1/authorize", key, map[string]string{"buid": "x", "pin": "123456"}); code != http.StatusNotFound && code != http.StatusUnprocessableEntity {
			t.Fatalf("%s: authorize %d %v", what, code, body)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("%s: healthz and authorize took %s", what, d)
		}
	}
	answersQuickly("idle")
	idle := rssMB(t, in.cmd.Process.Pid)

	const size = 1 << 20
	chunk := []byte(strings.Repeat("x", 64<<10))
	// upload opens a connection from a loopback address and sends a
	// delivery's headers and all but one byte of its body, then holds.
	upload := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			return nil
		}
		sig := "sha256=" + strings.Repeat("ab", 32)
		fmt.Fprintf(c, "POST /webhooks/messenger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hub-Signature-256: %s\r\nContent-Length: %d\r\n\r\n", sig, size)
		c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		for sent := 0; sent < size-1; {
			n := min(len(chunk), size-1-sent)
			if _, err := c.Write(chunk[:n]); err != nil {
				break // refused and closed by the server: that is the point
			}
			sent += n
		}
		return c
	}
	load := func(what string, from func(i int) string, n int) {
		var mu sync.Mutex
		var conns []net.Conn
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c := upload(from(i)); c != nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		peak := rssMB(t, in.cmd.Process.Pid)
		answersQuickly(what)
		t.Logf("%s: rss idle %d MB, under load %d MB", what, idle, peak)
		// The race detector multiplies the memory of every allocation: the
		// bound is checked on the build without it (.ci/run runs both).
		if peak-idle > 50 && !raceEnabled {
			t.Errorf("%s: resident memory grew from %d to %d MB", what, idle, peak)
		}
		for _, c := range conns {
			c.Close()
		}
	}
	load("290 uploads from one address", func(int) string { return "127.0.0.1" }, 290)
	load("200 uploads from 200 addresses", func(i int) string { return "127.0.1." + strconv.Itoa(i+1) }, 200)
}
