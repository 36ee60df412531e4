package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pairingd/pairingd/api/sitehook"
	"github.com/pairingd/pairingd/bots/telegram/tgfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store/storetest"
)

// Two real binaries on one PostgreSQL schema, as several instances behind a
// load balancer run: both serve the Telegram channel in webhook mode against
// one fake Bot API and send site events to one receiver. Each instance talks
// to the fake through its own counting proxy, and its site webhook URL names
// it, so the tests see which instance did what.

const (
	// multiPINSecret keys the PIN hashes of every instance.
	multiPINSecret      = "instances-share-this-pin-secret-0123456789"
	multiTelegramSecret = "multi-instance-telegram-secret"
	multiHookSecret     = "multi-instance-hook-secret-0123456789"
	multiPublicURL      = "https://pairingd.example" // the load balancer both instances sit behind
)

type twoInstances struct {
	t    *testing.T
	tg   *tgfake.Server
	db   *sql.DB // the instances' schema, to watch the queues drain
	dir  string
	envs [2][]string
	key  string
	in   [2]*instance
	// sent counts the sendMessage requests each instance made.
	sent  [2]*atomic.Int64
	chats *chatTracker
	site  *siteReceiver // nil without a site webhook
}

var instanceNames = [2]string{"a", "b"}

// startTwoInstances starts two binaries on a fresh PostgreSQL schema (the
// test is skipped without PAIRING_TEST_POSTGRES_DSN) and waits until both
// bots registered the one webhook URL.
func startTwoInstances(t *testing.T, withSite bool, extra ...string) *twoInstances {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	m := &twoInstances{t: t, tg: tgfake.New(t, "123456:AAE-multi-instance-token"), dir: t.TempDir(),
		chats: &chatTracker{inFlight: map[string]int{}}}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m.db = db
	if withSite {
		m.site = newSiteReceiver(t)
	}
	for i := range m.in {
		m.sent[i] = new(atomic.Int64)
		proxy := countingProxy(t, m.tg.URL(), m.sent[i], m.chats)
		env := telegramEnv(m.dir, m.tg, append([]string{
			// Later entries win (os/exec keeps the last of a duplicate key).
			"PAIRINGD_CHANNELS_0_API_ENDPOINT=" + proxy.URL + "/bot%s/%s",
			"PAIRINGD_CHANNELS_0_MODE=webhook",
			"PAIRINGD_CHANNELS_0_WEBHOOK_SECRET=" + multiTelegramSecret,
			"PAIRINGD_SERVER_PUBLIC_URL=" + multiPublicURL,
			"PAIRINGD_SERVER_PUBLIC_RATE_PER_SECOND=10000", // every webhook comes from 127.0.0.1 here (burst 20000)
			"PAIRINGD_DATABASE_DRIVER=postgres",
			"PAIRINGD_DATABASE_DSN=" + dsn,
			"PAIRINGD_PAIRING_SECRET=" + multiPINSecret,
			"PAIRINGD_LOG_LEVEL=info",
			"PAIRINGD_JOBS_POLL_INTERVAL=100ms",
			"PAIRINGD_JOBS_POLL_INTERVAL=100ms",
		}, extra...)...)
		if withSite {
			env = append(env,
				"PAIRINGD_SITE_WEBHOOK_URL="+m.site.srv.URL+"/hook?instance="+instanceNames[i],
				"PAIRINGD_SITE_WEBHOOK_SECRET="+multiHookSecret,
				"PAIRINGD_JOBS_POLL_INTERVAL=100ms",
				"PAIRINGD_JOBS_BACKOFF_MIN=100ms",
				"PAIRINGD_JOBS_BACKOFF_MAX=200ms",
			)
		}
		m.envs[i] = env
	}
	m.key = lastLine(cli(t, m.dir, m.envs[0], "keys", "create", "--name", "site"))
	for i := range m.in {
		m.in[i] = start(t, m.dir, m.envs[i])
	}
	m.waitUntil("both bots registered the webhook", 30*time.Second, func() bool {
		return m.tg.CallCount("setWebhook") >= 2
	})
	if got := m.tg.Webhook().URL; got != multiPublicURL+"/webhooks/telegram/telegram" {
		t.Fatalf("webhook URL %q", got)
	}
	return m
}

// countingProxy forwards to the fake Bot API and counts sendMessage calls
// in sends and, in chats, the calls of every proxy by chat. A call counts
// as in flight until the fake's answer reaches the proxy, before the
// instance can see it.
func countingProxy(t *testing.T, target string, sends *atomic.Int64, chats *chatTracker) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	type endKey struct{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(res *http.Response) error {
		if end, ok := res.Request.Context().Value(endKey{}).(func()); ok {
			end()
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(strings.ToLower(r.URL.Path), "/sendmessage") {
			rp.ServeHTTP(w, r)
			return
		}
		sends.Add(1)
		body, _ := io.ReadAll(r.Body)
		q, _ := url.ParseQuery(string(body))
		end := sync.OnceFunc(chats.begin(q.Get("chat_id")))
		defer end() // the request failed: no answer came
		r = r.WithContext(context.WithValue(r.Context(), endKey{}, end))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// chatTracker counts the sends that began while another send to the same
// chat, from either instance, was still in flight.
type chatTracker struct {
	mu       sync.Mutex
	inFlight map[string]int
	overlaps int
}

func (c *chatTracker) begin(chat string) (end func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight[chat] > 0 {
		c.overlaps++
	}
	c.inFlight[chat]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.inFlight[chat]--
	}
}

func (c *chatTracker) overlapping() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overlaps
}

// waitUntil polls cond until it holds, or fails the test after timeout.
func (m *twoInstances) waitUntil(what string, timeout time.Duration, cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			m.t.Fatalf("%s: not within %s\ninstance a:\n%s\ninstance b:\n%s", what, timeout,
				tailLines(m.in[0].logs(), 40), tailLines(m.in[1].logs(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// count runs a SELECT count(*) on the instances' schema.
func (m *twoInstances) count(query string) int {
	m.t.Helper()
	var n int
	if err := m.db.QueryRow(query).Scan(&n); err != nil {
		m.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// tgUpdate is a private text message from chat as Telegram posts it to a
// webhook.
func tgUpdate(updateID int, chat int64, text string) []byte {
	msg := map[string]any{
		"message_id": updateID, "date": time.Now().Unix(), "text": text,
		"from": map[string]any{"id": chat, "is_bot": false, "first_name": "Ann", "language_code": "en"},
		"chat": map[string]any{"id": chat, "type": "private", "first_name": "Ann"},
	}
	if strings.HasPrefix(text, "/") {
		msg["entities"] = []map[string]any{{"type": "bot_command", "offset": 0, "length": len(strings.Fields(text)[0])}}
	}
	b, _ := json.Marshal(map[string]any{"update_id": updateID, "message": msg})
	return b
}

// postUpdate delivers one update to an instance's webhook as Telegram
// does: again (after 429, 5xx or no answer) until it answers 200.
func postUpdate(base string, body []byte) error {
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/telegram/telegram", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(tgfake.SecretHeader, multiTelegramSecret)
		res, err := client.Do(req)
		status := 0
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			status = res.StatusCode
		}
		switch {
		case status == http.StatusOK:
			return nil
		case status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			return fmt.Errorf("webhook answered %d", status)
		case time.Now().After(deadline):
			return fmt.Errorf("webhook: no 200 within 20s (last %d, %v)", status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// converse has chat i send texts[0], texts[1]... in order, each text as
// one update (ids from firstID), the k-th through instance (i+k)%2; when
// dup(i), each update also goes to the other instance at the same moment
// (a redelivery racing the first delivery). A chat sends its next update
// once its previous one was answered 200. Chats run side by side. It
// returns how many distinct updates were sent.
func (m *twoInstances) converse(chats []int64, texts []string, firstID int, dup func(i int) bool) int {
	m.t.Helper()
	errs := make(chan error, len(chats)*len(texts)*2)
	var wg sync.WaitGroup
	for i, chat := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, text := range texts {
				body := tgUpdate(firstID+i*len(texts)+k, chat, text)
				to := []*instance{m.in[(i+k)%2]}
				if dup(i) {
					to = append(to, m.in[(i+k+1)%2])
				}
				var sends sync.WaitGroup
				for _, in := range to {
					sends.Add(1)
					go func() {
						defer sends.Done()
						if err := postUpdate(in.base, body); err != nil {
							errs <- fmt.Errorf("chat %d update %d: %w", chat, k, err)
						}
					}()
				}
				sends.Wait()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		m.t.Fatal(err)
	}
	return len(chats) * len(texts)
}

// waitInboundHandled waits until the inbound queue holds exactly n rows,
// all handled (none pending, none given up).
func (m *twoInstances) waitInboundHandled(n int) {
	m.t.Helper()
	m.waitUntil("inbound events handled", 30*time.Second, func() bool {
		return m.count(`SELECT count(*) FROM inbound_events WHERE done_at = 0 AND failed_at = 0`) == 0
	})
	if got := m.count(`SELECT count(*) FROM inbound_events`); got != n {
		m.t.Fatalf("%d inbound events stored for %d distinct updates", got, n)
	}
	if failed := m.count(`SELECT count(*) FROM inbound_events WHERE failed_at <> 0`); failed != 0 {
		m.t.Fatalf("%d inbound events given up", failed)
	}
}

// pinMessage reads the PIN and BUID of a PIN message; ok is false for any
// other message.
func pinMessage(msg tgfake.SentMessage) (buid, pin string, ok bool) {
	if p := pinRE.FindStringSubmatch(msg.Plain()); p != nil {
		pin = p[1]
	}
	for _, b := range msg.Buttons() {
		if b.URL != nil {
			if u := buidRE.FindStringSubmatch(*b.URL); u != nil {
				buid = u[1]
			}
		}
	}
	return buid, pin, pin != "" && buid != ""
}

// link links chat i to users[i] with the PIN the chat was sent, by an
// authorize on instance (i+1)%2.
func (m *twoInstances) link(chats []int64, users []string) {
	m.t.Helper()
	for i, chat := range chats {
		buid, pin := "", ""
		for _, msg := range m.tg.SentTo(chat) {
			if b, p, ok := pinMessage(msg); ok {
				buid, pin = b, p
				break
			}
		}
		if pin == "" {
			m.t.Fatalf("chat %d got no PIN message: %+v", chat, m.tg.SentTo(chat))
		}
		code, out := m.in[(i+1)%2].call("POST", "/v1/authorize", m.key, map[string]any{"buid": buid, "pin": pin, "user_id": users[i]})
		if code != 200 || out["outcome"] != "linked" {
			m.t.Fatalf("authorize chat %d: %d %v", chat, code, out)
		}
	}
}

// sampleSharedChats looks at the outbox every few milliseconds until the
// returned stop is called, and counts the looks that found a chat with
// two deliveries claimed (sending) at once.
func (m *twoInstances) sampleSharedChats() (stop func() (samples, shared int)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var samples, shared int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var n int
			err := m.db.QueryRow(`SELECT count(*) FROM (SELECT lead_id FROM outbox_deliveries
				WHERE status = 'sending' GROUP BY lead_id HAVING count(*) > 1) AS shared`).Scan(&n)
			if err != nil {
				continue // the test's end closes the database
			}
			samples++
			if n > 0 {
				shared++
			}
		}
	}()
	return func() (int, int) {
		close(done)
		wg.Wait()
		return samples, shared
	}
}

// notification is one accepted POST /v1/users/{user_id}/messages.
type notification struct {
	chat int64
	text string
	id   int64
}

// notifyAll queues perUser notifications to every user (users[i] is
// linked to chats[i]), the k-th request through instance k%2, a few
// requests at a time.
func (m *twoInstances) notifyAll(chats []int64, users []string, perUser int) []notification {
	m.t.Helper()
	var jobs []notification
	for r := range perUser {
		for i, chat := range chats {
			jobs = append(jobs, notification{chat: chat, text: fmt.Sprintf("note %d for %s", r, users[i])})
		}
	}
	userOf := map[int64]string{}
	for i, chat := range chats {
		userOf[chat] = users[i]
	}
	var next atomic.Int64
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1) - 1); k < len(jobs); k = int(next.Add(1) - 1) {
				id, err := postNotification(m.in[k%2].base, m.key, userOf[jobs[k].chat], jobs[k].text)
				if err != nil {
					errs <- err
					return
				}
				jobs[k].id = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		m.t.Fatal(err)
	}
	return jobs
}

func postNotification(base, key, user, text string) (int64, error) {
	b, _ := json.Marshal(map[string]any{"text": text})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/users/"+user+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out struct {
		ID int64 `json:"id"`
	}
	if res.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &out) != nil || out.ID == 0 {
		return 0, fmt.Errorf("notify %s: %d %s", user, res.StatusCode, raw)
	}
	return out.ID, nil
}

// notesReceived counts, per "chat|text", the fake's messages that are
// notifications (texts starting "note ").
func (m *twoInstances) notesReceived() map[string]int {
	got := map[string]int{}
	for _, msg := range m.tg.Sent() {
		if strings.HasPrefix(msg.Text, "note ") {
			got[fmt.Sprintf("%d|%s", msg.ChatID, msg.Text)]++
		}
	}
	return got
}

// checkDeliveredByAPI asks GET /v1/messages/{id} of every notification,
// alternating instances, and wants its one delivery delivered, after
// exactly attempts claims (0: any number).
func (m *twoInstances) checkDeliveredByAPI(notes []notification, attempts int, ins ...*instance) {
	m.t.Helper()
	for k, n := range notes {
		code, out := ins[k%len(ins)].call("GET", fmt.Sprintf("/v1/messages/%d", n.id), m.key, nil)
		ds, _ := out["deliveries"].([]any)
		if code != 200 || len(ds) != 1 {
			m.t.Fatalf("message %d: %d %v", n.id, code, out)
		}
		if d, _ := ds[0].(map[string]any); d["status"] != "delivered" || attempts > 0 && d["attempts"] != float64(attempts) {
			m.t.Fatalf("message %d: delivery %v", n.id, d)
		}
	}
}

// siteReceiver is the site's webhook: it checks each request's signature
// and records the events in arrival order, with the instance that sent
// each.
type siteReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []receivedEvent
	problems []string
}

type receivedEvent struct {
	ID   int64
	Type string
	User string
	From string // the instance: "a" or "b"
}

func newSiteReceiver(t *testing.T) *siteReceiver {
	r := &siteReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := sitehook.Verify([]byte(multiHookSecret), req.Header.Get("Pairingd-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			r.problems = append(r.problems, "signature: "+err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev pairing.EventJSON
		if err := json.Unmarshal(body, &ev); err != nil || strconv.FormatInt(ev.ID, 10) != req.Header.Get("Pairingd-Event-Id") {
			r.problems = append(r.problems, "bad event: "+string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		user := ""
		if ev.UserID != nil {
			user = *ev.UserID
		}
		r.got = append(r.got, receivedEvent{ID: ev.ID, Type: ev.Type, User: user, From: req.URL.Query().Get("instance")})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *siteReceiver) received() ([]receivedEvent, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got), slices.Clone(r.problems)
}

// TestBinaryInstancesShareQueues runs two instances on one PostgreSQL and
// checks that none of the durable queues loses or repeats work across
// them: the inbound webhook queue (updates posted to both instances, some
// to both at once, are each handled once, in order per chat), the
// notifications outbox (200 messages accepted by both are each delivered
// exactly once, by both workers, never two at once to one chat) and the
// site-events outbox (every event reaches the site exactly once, in order
// per user, sent by both). Nothing crashes here, so the at-least-once
// designs must not repeat anything.
func TestBinaryInstancesShareQueues(t *testing.T) {
	m := startTwoInstances(t, true,
		"PAIRINGD_CHANNELS_0_RATE_PER_SECOND=100",
		"PAIRINGD_CHANNELS_0_PER_CHAT_INTERVAL=10ms",
		// A claim looks at 4 x batch_size rows: with fewer than the 200
		// queued, the instances claim side by side from different rows,
		// often of the same chats.
		"PAIRINGD_JOBS_NOTIFY_BATCH_SIZE=10",
	)
	const users, perUser = 40, 5
	chats := make([]int64, users)
	names := make([]string, users)
	for i := range chats {
		chats[i] = 880000 + int64(i)
		names[i] = "multi-user-" + strconv.Itoa(i)
	}

	// Inbound: each chat sends /login then /help, through alternating
	// instances; every 4th chat's updates reach both instances at once.
	n := m.converse(chats, []string{"/login", "/help"}, 5000, func(i int) bool { return i%4 == 0 })
	m.waitInboundHandled(n)
	// Redeliveries of handled updates, to the other instance: no effect.
	redelivered := 0
	for i := 0; i < users; i += 5 {
		for k := range 2 {
			redelivered++
			if err := postUpdate(m.in[(i+k+1)%2].base, tgUpdate(5000+2*i+k, chats[i], []string{"/login", "/help"}[k])); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.waitInboundHandled(n)
	for _, chat := range chats {
		sent := m.tg.SentTo(chat)
		if len(sent) != 2 {
			t.Fatalf("chat %d: %d answers to 2 updates: %+v", chat, len(sent), sent)
		}
		if _, _, ok := pinMessage(sent[0]); !ok || !strings.Contains(sent[1].Plain(), "What I can do") {
			t.Fatalf("chat %d: answers out of order or wrong: %q then %q", chat, sent[0].Plain(), sent[1].Plain())
		}
	}
	inbound := [2]int64{m.sent[0].Load(), m.sent[1].Load()}
	t.Logf("inbound: %d updates (%d of them posted to both instances at once, %d redelivered later) answered once each, in order; answers sent by a: %d, b: %d",
		n, 2*((users+3)/4), redelivered, inbound[0], inbound[1])
	if inbound[0] == 0 || inbound[1] == 0 {
		t.Fatalf("one instance handled no inbound update: a %d, b %d", inbound[0], inbound[1])
	}

	// Notifications: link every chat (link.created events), then 200
	// messages accepted alternately by both instances.
	m.link(chats, names)
	stopSampling := m.sampleSharedChats()
	notes := m.notifyAll(chats, names, perUser)
	m.waitUntil("every notification delivered", 40*time.Second, func() bool {
		return m.count(`SELECT count(*) FROM outbox_deliveries WHERE status <> 'delivered'`) == 0
	})
	samples, shared := stopSampling()
	if got := m.count(`SELECT count(*) FROM outbox_deliveries`); got != len(notes) {
		t.Fatalf("%d deliveries for %d messages", got, len(notes))
	}
	got := m.notesReceived()
	dups := 0
	for _, nt := range notes {
		k := fmt.Sprintf("%d|%s", nt.chat, nt.text)
		switch c := got[k]; {
		case c == 0:
			t.Errorf("message %d (%q) never reached chat %d", nt.id, nt.text, nt.chat)
		case c > 1:
			dups += c - 1
			t.Errorf("message %d (%q) reached chat %d %d times", nt.id, nt.text, nt.chat, c)
		}
	}
	if len(got) != len(notes) {
		t.Errorf("%d distinct notifications received, %d sent", len(got), len(notes))
	}
	// Each delivery was claimed once (a second claim counts a second
	// attempt even when its send went nowhere).
	m.checkDeliveredByAPI(notes, 1, m.in[0], m.in[1])
	byInstance := [2]int64{m.sent[0].Load() - inbound[0], m.sent[1].Load() - inbound[1]}
	t.Logf("notifications: %d delivered, %d duplicates; sent by a: %d, b: %d; %d sends began while another to the same chat was in flight",
		len(notes), dups, byInstance[0], byInstance[1], m.chats.overlapping())
	if byInstance[0] == 0 || byInstance[1] == 0 {
		t.Errorf("one instance's worker delivered nothing: a %d, b %d", byInstance[0], byInstance[1])
	}
	if o := m.chats.overlapping(); o > 0 {
		t.Errorf("%d times a chat was sent a message while another to it was in flight (one chat gets one message at a time across instances)", o)
	}
	t.Logf("outbox: %d looks while delivering, %d saw a chat with two deliveries claimed at once", samples, shared)
	if shared > 0 {
		t.Errorf("%d times a chat had two deliveries claimed at once (one chat gets one message at a time across instances)", shared)
	}

	// Site events: one link.created per user and one message.delivered per
	// notification, each received once, in id order per user.
	wantEvents := users + len(notes)
	m.waitUntil("every site event delivered", 30*time.Second, func() bool {
		evs, _ := m.site.received()
		return len(evs) >= wantEvents &&
			m.count(`SELECT count(*) FROM site_events WHERE delivered_at = 0 AND failed_at = 0`) == 0
	})
	if total := m.count(`SELECT count(*) FROM site_events`); total != wantEvents {
		t.Fatalf("%d site events written, want %d", total, wantEvents)
	}
	evs, problems := m.site.received()
	if len(problems) > 0 {
		t.Fatalf("site receiver: %v", problems)
	}
	seen := map[int64]int{}
	types := map[string]int{}
	from := map[string]int{}
	perUserIDs := map[string][]receivedEvent{}
	for _, e := range evs {
		seen[e.ID]++
		if seen[e.ID] > 1 {
			t.Errorf("event %d (%s) received %d times", e.ID, e.Type, seen[e.ID])
			continue
		}
		types[e.Type]++
		from[e.From]++
		perUserIDs[e.User] = append(perUserIDs[e.User], e)
	}
	if types[pairing.EventLinkCreated] != users || types[pairing.EventMessageDelivered] != len(notes) || len(seen) != wantEvents {
		t.Fatalf("received events by type %v (%d distinct), want %d link.created and %d message.delivered", types, len(seen), users, len(notes))
	}
	for user, list := range perUserIDs {
		if list[0].Type != pairing.EventLinkCreated {
			t.Errorf("%s: first event %d is %s, not link.created", user, list[0].ID, list[0].Type)
		}
		for j := 1; j < len(list); j++ {
			if list[j].ID < list[j-1].ID {
				t.Errorf("%s: event %d arrived after event %d", user, list[j].ID, list[j-1].ID)
			}
		}
	}
	t.Logf("site events: %d distinct received; sent by a: %d, b: %d", len(seen), from["a"], from["b"])
	if from["a"] == 0 || from["b"] == 0 {
		t.Errorf("one instance sent no site event: %v", from)
	}
	// Polling lists the same events: nothing was lost on the way.
	polled := m.pollEvents(wantEvents)
	for _, id := range polled {
		if seen[id] != 1 {
			t.Errorf("event %d listed by GET /v1/events, received %d times", id, seen[id])
		}
	}

	for _, in := range m.in {
		in.stop()
	}
	for i, in := range m.in {
		for _, warn := range []string{"lease lost", "will be sent again", "may be handled again"} {
			if strings.Contains(in.logs(), warn) {
				t.Errorf("instance %s logged %q (work done twice):\n%s", instanceNames[i], warn, in.logs())
			}
		}
	}
}

// pollEvents pages through GET /v1/events until it lists want events (they
// are listed 2 s after they are written) and returns their ids.
func (m *twoInstances) pollEvents(want int) []int64 {
	m.t.Helper()
	var ids []int64
	m.waitUntil("GET /v1/events lists every event", 15*time.Second, func() bool {
		ids = ids[:0]
		after := int64(0)
		for {
			code, out := m.in[len(ids)%2].call("GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", after), m.key, nil)
			if code != 200 {
				m.t.Fatalf("GET /v1/events: %d %v", code, out)
			}
			list, _ := out["events"].([]any)
			for _, e := range list {
				id := int64(e.(map[string]any)["id"].(float64))
				ids = append(ids, id)
				after = id
			}
			if out["has_more"] != true {
				return len(ids) == want
			}
		}
	})
	return ids
}

// TestBinaryInstancesNotifyKill9 kills one of two instances with SIGKILL
// while both deliver notifications: the other one finishes every accepted
// message once the dead one's leases pass. Duplicates are possible only
// for the sends the dead instance had in flight (notify.parallel).
func TestBinaryInstancesNotifyKill9(t *testing.T) {
	const parallel = 4
	m := startTwoInstances(t, false,
		"PAIRINGD_CHANNELS_0_RATE_PER_SECOND=20",
		"PAIRINGD_CHANNELS_0_PER_CHAT_INTERVAL=50ms",
		"PAIRINGD_JOBS_SEND_TIMEOUT=1s",
		"PAIRINGD_JOBS_WORKERS="+strconv.Itoa(parallel),
	)
	const users, perUser = 10, 20
	chats := make([]int64, users)
	names := make([]string, users)
	for i := range chats {
		chats[i] = 770000 + int64(i)
		names[i] = "kill-user-" + strconv.Itoa(i)
	}
	m.waitInboundHandled(m.converse(chats, []string{"/login"}, 9000, func(int) bool { return false }))
	m.link(chats, names)
	before := m.sent[0].Load()
	notes := m.notifyAll(chats, names, perUser)

	m.waitUntil("instance a delivering", 20*time.Second, func() bool { return m.sent[0].Load()-before >= 20 })
	a := m.in[0]
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	atKill := len(m.notesReceived())
	if atKill >= len(notes) {
		t.Fatalf("all %d messages were delivered before the kill; slow the pacing down", len(notes))
	}
	t.Logf("instance a killed after %d of %d messages reached the chats", atKill, len(notes))

	m.waitUntil("instance b delivered every accepted message", 40*time.Second, func() bool {
		return m.count(`SELECT count(*) FROM outbox_deliveries WHERE status <> 'delivered'`) == 0
	})
	m.checkDeliveredByAPI(notes, 0, m.in[1])
	got := m.notesReceived()
	dups := 0
	for _, nt := range notes {
		k := fmt.Sprintf("%d|%s", nt.chat, nt.text)
		if got[k] == 0 {
			t.Errorf("message %d (%q) never reached chat %d", nt.id, nt.text, nt.chat)
		}
		dups += max(0, got[k]-1)
	}
	if len(got) != len(notes) {
		t.Errorf("%d distinct notifications received, %d sent", len(got), len(notes))
	}
	t.Logf("all %d accepted messages delivered after instance a's kill -9; %d duplicates (sends in flight at the kill)", len(notes), dups)
	if dups > parallel {
		t.Fatalf("%d duplicates: more than the %d sends instance a could have had in flight", dups, parallel)
	}
	m.in[1].stop()
}
