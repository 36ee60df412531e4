package main

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBinaryConnectionFloodFromOneHost is the hostile test's finding: one
// host opening 20,000 connections used up the process's file descriptors,
// so other clients timed out, and memory stayed high afterwards. With the
// per-address cap the flood's connections past it are closed at once;
// another client's /healthz and POST /v1/authorize answer within a second
// throughout, and resident memory returns near its baseline.
func TestBinaryConnectionFloodFromOneHost(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	env := baseEnv(dir, "PAIRINGD_SERVER_MAX_CONNECTIONS_PER_IP=200")
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	in := start(t, dir, env)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(in.base, "http://"))
	// The other client comes from another loopback address.
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.2.1")}}).DialContext,
	}}
	answers := func(what string) {
		t.Helper()
		began := time.Now()
		res, err := other.Get(in.base + "/healthz")
		if err != nil {
			t.Fatalf("%s: healthz: %v", what, err)
		}
		res.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, in.base+"/v1/authorize", strings.NewReader(`{"buid":"x","pin":"123456"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err = other.Do(req)
		if err != nil {
			t.Fatalf("%s: authorize: %v", what, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%s: authorize answered %d", what, res.StatusCode)
		}
		if d := time.Since(began); d > time.Second {
			t.Errorf("%s: healthz and authorize took %s", what, d)
		}
	}
	answers("idle")
	baseline := rssMB(t, in.cmd.Process.Pid)
	fdsBefore := openFiles(t, in.cmd.Process.Pid)

	// The flood: 20,000 connections from 127.0.0.1, opened 100 at a time,
	// each kept open until the server closes it or the flood ends (the
	// test process has file descriptors for about 20,000 sockets in all).
	var kept sync.Map
	var held, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	next := make(chan int)
	for range 100 {
		wg.Go(func() {
			for range next {
				c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 5*time.Second)
				if err != nil {
					refused.Add(1)
					continue
				}
				// A connection past the cap is closed by the server at
				// once: a read sees it end.
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					refused.Add(1)
					c.Close()
					continue
				}
				held.Add(1)
				kept.Store(c, true)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20_000 {
			next <- 0
		}
		close(next)
		wg.Wait()
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for flooding := true; flooding; {
		select {
		case <-done:
			flooding = false
		case <-tick.C:
			answers("during the flood")
		}
	}
	close(stop)
	answers("after the flood, its connections still open")
	time.Sleep(200 * time.Millisecond) // the server closes what its backlog still held
	peak := rssMB(t, in.cmd.Process.Pid)
	fds := openFiles(t, in.cmd.Process.Pid)
	t.Logf("flood: the client saw %d connections open and %d closed; the server holds %d files (%d before); rss %d MB before, %d MB with the flood open",
		held.Load(), refused.Load(), fds, fdsBefore, baseline, peak)
	if fds-fdsBefore > 200+5 {
		t.Errorf("the server holds %d more files with the flood open; the cap per address is 200", fds-fdsBefore)
	}
	kept.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	time.Sleep(500 * time.Millisecond)
	answers("after the flood")
	after := rssMB(t, in.cmd.Process.Pid)
	t.Logf("rss after the flood closed: %d MB", after)
	// The race detector multiplies the memory of every allocation: the
	// bound is checked on the build without it (.ci/run runs both).
	if after-baseline > 30 && !raceEnabled {
		t.Errorf("resident memory %d MB after the flood, %d MB before", after, baseline)
	}
}

// openFiles counts a process's open file descriptors.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Skip("no /proc: open files cannot be counted here")
	}
	return len(ents)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
