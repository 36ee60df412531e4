package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBinaryQueuesThroughput measures the three durable queues with two
// instances on one PostgreSQL (docs/performance.md): inbound Telegram
// updates (webhook intake, claim, handling: a PIN issued and sent), then
// notifications (claim, send to the fake Bot API) with the site events
// they cause (link.created, message.delivered, sent to a site receiver).
// For each phase it logs jobs per second and the CPU the PostgreSQL
// backends of the two instances spent per job. It is a measurement, not a
// check of figures: run it on purpose,
//
//	PAIRINGD_QUEUE_BENCH=1 PAIRING_TEST_POSTGRES_DSN=... go test ./cmd/pairingd/ -run QueuesThroughput -v
func TestBinaryQueuesThroughput(t *testing.T) {
	if os.Getenv("PAIRINGD_QUEUE_BENCH") == "" {
		t.Skip("a measurement: set PAIRINGD_QUEUE_BENCH=1")
	}
	users, perUser := 300, 4
	if v, err := strconv.Atoi(os.Getenv("PAIRINGD_QUEUE_BENCH_USERS")); err == nil && v > 0 {
		users = v
	}
	m := startTwoInstances(t, true,
		"PAIRINGD_CHANNELS_0_RATE_PER_SECOND=100000",
		"PAIRINGD_CHANNELS_0_PER_CHAT_INTERVAL=1ms",
	)
	// Restart both with an application_name of their own, so that the
	// backends they use can be told from every other client's.
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	app := "pairingd-qbench-" + hex.EncodeToString(b)
	for i := range m.in {
		m.in[i].stop()
		dsn := ""
		for _, kv := range m.envs[i] {
			if v, ok := strings.CutPrefix(kv, "PAIRINGD_DATABASE_DSN="); ok {
				dsn = v
			}
		}
		m.envs[i] = append(m.envs[i], "PAIRINGD_DATABASE_DSN="+dsn+"&application_name="+app)
		m.in[i] = start(t, m.dir, m.envs[i])
	}
	dbCPU := func() map[int]float64 {
		rows, err := m.db.Query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int]float64{}
		for rows.Next() {
			var pid int
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			out[pid] = processCPU(pid)
		}
		return out
	}
	spent := func(before, after map[int]float64) float64 {
		var s float64
		for pid, v := range after {
			s += v - before[pid]
		}
		return s
	}
	chats := make([]int64, users)
	names := make([]string, users)
	for i := range chats {
		chats[i] = 990000 + int64(i)
		names[i] = "qbench-user-" + strconv.Itoa(i)
	}

	c0, t0 := dbCPU(), time.Now()
	n := m.converse(chats, []string{"/login"}, 70000, func(int) bool { return false })
	m.waitInboundHandled(n)
	el, c1 := time.Since(t0), dbCPU()
	t.Logf("inbound: %d updates taken in and handled in %v: %.0f/s; database CPU %.2f ms per update",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), spent(c0, c1)*1000/float64(n))

	m.link(chats, names)
	m.waitUntil("link.created events delivered", 60*time.Second, func() bool {
		return m.count(`SELECT count(*) FROM site_events WHERE delivered_at = 0 AND failed_at = 0`) == 0
	})

	c2, t2 := dbCPU(), time.Now()
	notes := m.notifyAll(chats, names, perUser)
	accepted := time.Since(t2)
	m.waitUntil("every notification delivered", 120*time.Second, func() bool {
		return m.count(`SELECT count(*) FROM outbox_deliveries WHERE status <> 'delivered'`) == 0
	})
	delivered := time.Since(t2)
	m.waitUntil("every site event delivered", 120*time.Second, func() bool {
		return m.count(`SELECT count(*) FROM site_events WHERE delivered_at = 0 AND failed_at = 0`) == 0
	})
	all, c3 := time.Since(t2), dbCPU()
	jobs := 2 * len(notes) // a delivery and its message.delivered event
	t.Logf("notifications: %d accepted in %v (%.0f/s), delivered after %v (%.0f/s); their %d site events sent after %v; "+
		"database CPU %.2f ms per notification (accept, claim, send, site event)",
		len(notes), accepted.Round(time.Millisecond), float64(len(notes))/accepted.Seconds(),
		delivered.Round(time.Millisecond), float64(len(notes))/delivered.Seconds(), len(notes), all.Round(time.Millisecond),
		spent(c2, c3)*1000/float64(len(notes)))
	t.Logf("jobs claimed and finished in the second phase: %d in %v, %.0f/s over both instances", jobs, all.Round(time.Millisecond), float64(jobs)/all.Seconds())
	for _, in := range m.in {
		in.stop()
	}
}

// processCPU is the user and system CPU a process has used, in seconds
// (Linux /proc; 0 when it cannot be read).
func processCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	// The command name is in parentheses and may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
