package messenger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

func TestVerifySubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name, mode, token, challenge string
		want                         int
	}{
		{"page A", "subscribe", verifyA, "CHALLENGE_1", 200},
		{"page B", "subscribe", verifyB, "12345", 200},
		{"wrong token", "subscribe", "nope", "CHALLENGE_3", 403},
		{"empty token", "subscribe", "", "CHALLENGE_4", 403},
		{"wrong mode", "unsubscribe", verifyA, "CHALLENGE_5", 403},
		{"no challenge", "subscribe", verifyA, "", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"hub.mode": {tc.mode}, "hub.verify_token": {tc.token}, "hub.challenge": {tc.challenge}}
			rec := httptest.NewRecorder()
			e.hub.WebhookHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, WebhookPath+"?"+q.Encode(), nil))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 200 && (rec.Body.String() != tc.challenge || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain")) {
				t.Fatalf("answer %q %q", rec.Body, rec.Header().Get("Content-Type"))
			}
			if tc.want != 200 && strings.Contains(rec.Body.String(), tc.challenge) && tc.challenge != "" {
				t.Fatal("challenge echoed on refusal")
			}
			if tc.want != 200 {
				wantErrorShape(t, rec, "forbidden")
			}
		})
	}
	rec := httptest.NewRecorder()
	e.hub.WebhookHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPut, WebhookPath, nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, POST" {
		t.Fatalf("PUT: %d %q", rec.Code, rec.Header().Get("Allow"))
	}
	wantErrorShape(t, rec, "method_not_allowed")
}

// wantErrorShape checks a refusal is the API's error object with code.
func wantErrorShape(t *testing.T, rec *httptest.ResponseRecorder, code string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q: %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != code || b.Error.Message == "" {
		t.Fatalf("body %s (%v), want code %s", rec.Body, err, code)
	}
}

func TestSignatureRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := fbfake.Delivery(pageA, fbfake.Text("5001", "m.sig", "login"))
	good := fbfake.Sign(secretA, body)
	cases := map[string]string{
		"missing":       "",
		"sha1":          "sha1=" + strings.Repeat("a", 40),
		"no prefix":     strings.TrimPrefix(good, "sha256="),
		"not hex":       "sha256=" + strings.Repeat("z", 64),
		"short":         good[:len(good)-2],
		"upper prefix":  "SHA256=" + strings.TrimPrefix(good, "sha256="),
		"wrong secret":  fbfake.Sign("not-the-secret", body),
		"other body":    fbfake.Sign(secretA, append([]byte(" "), body...)),
		"verify token":  fbfake.Sign(verifyA, body),
		"trailing junk": good + "00",
	}
	for name, sig := range cases {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
			if sig != "" {
				r.Header.Set("X-Hub-Signature-256", sig)
			}
			rec := httptest.NewRecorder()
			e.hub.WebhookHandler().ServeHTTP(rec, r)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d", rec.Code)
			}
			wantErrorShape(t, rec, "forbidden")
		})
	}
	if len(e.fb.Sent()) != 0 || e.store.Persons() != 0 || len(e.fb.Requests()) != 0 || len(e.inbound.Rows()) != 0 {
		t.Fatalf("a refused delivery changed something: sent %d persons %d graph calls %d stored %d", len(e.fb.Sent()), e.store.Persons(), len(e.fb.Requests()), len(e.inbound.Rows()))
	}
	// The mid was not claimed: the genuine delivery is handled.
	if rec := e.post(secretA, body); rec.Code != 200 || len(e.fb.Sent()) != 1 {
		t.Fatalf("genuine delivery: %d, sent %d", rec.Code, len(e.fb.Sent()))
	}
}

// Meta signs the bytes it sends, escapes included: "\u00e4" must verify
// as those six characters, not as the decoded "ä".
func TestSignatureOverRawBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw := []byte(`{"object":"page","entry":[{"id":"` + pageA + `","time":1,"messaging":[{"sender":{"id":"5001"},"recipient":{"id":"` + pageA + `"},"timestamp":1700000000001,"message":{"mid":"m.umlaut","text":"h\u00e4llo \/ <b>"}}]}]}`)
	reencoded := bytes.ReplaceAll(raw, []byte(`\u00e4`), []byte("ä"))
	r := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(raw))
	r.Header.Set("X-Hub-Signature-256", fbfake.Sign(secretA, reencoded))
	rec := httptest.NewRecorder()
	e.hub.WebhookHandler().ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("signature over re-encoded body accepted: %d", rec.Code)
	}
	if rec := e.post(secretA, raw); rec.Code != 200 {
		t.Fatalf("raw signature refused: %d", rec.Code)
	}
	if m := e.last(); m.Text != e.text("en", "messenger_hint") {
		t.Fatalf("answer %q", m.Text)
	}
}

func TestBatchOfEntriesAndMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := fbfake.Body(
		fbfake.Entry{PageID: pageA, Messaging: []map[string]any{fbfake.Text("5001", "m.b1", "status"), fbfake.Text("5002", "m.b2", "help")}},
		fbfake.Entry{PageID: pageA, Messaging: []map[string]any{fbfake.Text("5003", "m.b3", "login"), fbfake.Text("5001", "m.b4", "help")}},
		// Signed by app A, so page B's entry is not believed.
		fbfake.Entry{PageID: pageB, Messaging: []map[string]any{fbfake.Text("6001", "m.b5", "login")}},
		fbfake.Entry{PageID: "999", Messaging: []map[string]any{fbfake.Text("7001", "m.b6", "login")}},
	)
	if rec := e.post(secretA, body); rec.Code != 200 || rec.Body.String() != "EVENT_RECEIVED" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	sent, err := e.fb.WaitSent(e.ctx, 4)
	if err != nil || len(sent) != 4 {
		t.Fatalf("sent %d: %v", len(sent), err)
	}
	to := map[string][]string{}
	for _, m := range sent {
		if m.PageID != pageA {
			t.Fatalf("sent through page %s", m.PageID)
		}
		to[m.RecipientID] = append(to[m.RecipientID], m.Text)
	}
	// One person's events keep their order.
	if got := to["5001"]; len(got) != 2 || got[0] != e.text("en", "messenger_status_not_linked") || got[1] != e.text("en", "messenger_help") {
		t.Fatalf("5001 got %q", got)
	}
	if len(to["5002"]) != 1 || len(to["5003"]) != 1 || len(to["6001"]) != 0 || len(to["7001"]) != 0 {
		t.Fatalf("recipients %v", to)
	}
	if e.store.Persons() != 3 {
		t.Fatalf("persons %d", e.store.Persons())
	}
	if !strings.Contains(e.logs.String(), "signed by another app") {
		t.Fatal("cross-app entry not logged")
	}
}

func TestDuplicatesHaveOneEffect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	login := fbfake.Delivery(pageA, fbfake.Text("5001", "m.dup", "login"))
	for i := 0; i < 3; i++ {
		if rec := e.post(secretA, login); rec.Code != 200 {
			t.Fatalf("try %d: %d", i, rec.Code)
		}
	}
	// The same mid inside another delivery, and an event without mid
	// (postback) delivered twice with the same timestamp.
	pb := fbfake.Postback("5002", payloadStatus)
	e.deliver(fbfake.Text("5001", "m.dup", "login"), pb)
	e.deliver(pb)
	sent := e.fb.Sent()
	if len(sent) != 2 {
		t.Fatalf("want one pairing message and one status, got %d", len(sent))
	}
	if audits := e.store.Audit(); len(audits) != 1 || audits[0].Action != "pin_issue" {
		t.Fatalf("audit %+v", audits)
	}
}

// A Graph failure does not fail the delivery: the webhook answers 200
// once the events are stored; the failed event is tried again after its
// backoff, the others are not repeated, and Meta's redelivery of the same
// body has no effect.
func TestFailedEventIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := fbfake.Delivery(pageA, fbfake.Text("5001", "m.retry", "status"), fbfake.Text("5002", "m.ok", "help"))
	e.fb.FailNext(2, 0) // Graph hiccup on the first send
	if rec := e.post(secretA, body); rec.Code != 200 {
		t.Fatalf("want 200 once stored, got %d", rec.Code)
	}
	if n := len(e.fb.Sent()); n != 1 {
		t.Fatalf("sent %d, want 1 (one send failed)", n)
	}
	var retry pairing.InboundItem
	for _, r := range e.inbound.Rows() {
		if r.DoneAt.IsZero() {
			retry = r
		}
	}
	if retry.ID == 0 || !retry.NextAttemptAt.After(e.clock.Now()) || retry.LastError == "" || retry.Attempts != 1 {
		t.Fatalf("failed event not scheduled again: %+v", e.inbound.Rows())
	}
	// Meta delivers again (it never needed to): nothing new.
	if rec := e.post(secretA, body); rec.Code != 200 || len(e.fb.Sent()) != 1 {
		t.Fatalf("redelivery: %d, %d sent", rec.Code, len(e.fb.Sent()))
	}
	e.clock.Advance(5 * time.Second)
	if n := e.drain(); n != 1 {
		t.Fatalf("retry handled %d events", n)
	}
	sent := e.fb.Sent()
	if len(sent) != 2 || sent[0].RecipientID == sent[1].RecipientID {
		t.Fatalf("after the retry: %+v", sent)
	}
	for _, r := range e.inbound.Rows() {
		if r.DoneAt.IsZero() {
			t.Fatalf("not done: %+v", r)
		}
	}

	// The database down: 500, nothing stored, so Meta delivers again.
	e.inbound.FailEnqueue(errors.New("database down"))
	if rec := e.post(secretA, fbfake.Delivery(pageA, fbfake.Text("5003", "m.db", "status"))); rec.Code != 500 {
		t.Fatalf("database down: %d", rec.Code)
	}
	e.inbound.FailEnqueue(nil)
	if rec := e.post(secretA, fbfake.Delivery(pageA, fbfake.Text("5003", "m.db", "status"))); rec.Code != 200 || e.last().RecipientID != "5003" {
		t.Fatalf("after recovery: %d", rec.Code)
	}
}

func TestBadDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, body := range map[string]string{"not json": "hello", "truncated": `{"object":"page","entry":[`, "wrong type": `{"object":"page","entry":{"id":1}}`} {
		rec := e.post(secretA, []byte(body))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, rec.Code)
		}
		wantErrorShape(t, rec, "invalid_request")
	}
	if rec := e.post(secretA, []byte(`{"object":"instagram","entry":[{"id":"`+pageA+`","messaging":[{"sender":{"id":"1"},"message":{"mid":"x","text":"login"}}]}]}`)); rec.Code != 200 {
		t.Errorf("other object: %d", rec.Code)
	}
	big := append([]byte(`{"object":"page","x":"`), bytes.Repeat([]byte("a"), maxWebhookBody)...)
	rec := e.post(secretA, append(big, `"}`...))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d", rec.Code)
	}
	wantErrorShape(t, rec, "payload_too_large")
	if len(e.fb.Sent()) != 0 || e.store.Persons() != 0 {
		t.Fatal("bad deliveries changed something")
	}
}

// hangingTransport never answers until the request is cancelled.
type hangingTransport struct{}

func (hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// The Graph API hanging: the webhook still answers at once; the worker's
// handling is bounded by HandleTimeout and the event is kept for a retry.
func TestHandlingIsBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.HandleTimeout = 150 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: hangingTransport{}}
	})
	began := time.Now()
	rec := e.postOnly(secretA, fbfake.Delivery(pageA, fbfake.Text("5001", "m.slow", "help")))
	if rec.Code != 200 || time.Since(began) > 100*time.Millisecond {
		t.Fatalf("status %d after %v", rec.Code, time.Since(began))
	}
	began = time.Now()
	e.drain()
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("handling took %v", d)
	}
	rows := e.inbound.Rows()
	if len(rows) != 1 || !rows[0].DoneAt.IsZero() || !rows[0].FailedAt.IsZero() || !rows[0].NextAttemptAt.After(e.clock.Now()) {
		t.Fatalf("timed-out event not kept for a retry: %+v", rows)
	}
}

// With the worker running (as serve runs it): Graph failing with 5xx
// answers, then recovering. The webhook answers at once every time, and
// the answer is sent after the recovery, once.
func TestGraphFailingThenRecovering(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.worker.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for range 12 { // more than the Graph client's own retries
		e.fb.FailNext(2, 0)
	}
	began := time.Now()
	if rec := e.postOnly(secretA, fbfake.Delivery(pageA, fbfake.Text("5001", "m.5xx", "help"))); rec.Code != 200 {
		t.Fatalf("webhook %d", rec.Code)
	}
	if d := time.Since(began); d > 100*time.Millisecond {
		t.Fatalf("webhook answered after %v", d)
	}
	// Wait for the failed attempts to be recorded, then let time pass
	// until the Graph fake has no failure left.
	deadline := time.Now().Add(10 * time.Second)
	for len(e.fb.Sent()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("never sent; rows %+v", e.inbound.Rows())
		}
		if r := e.inbound.Rows(); len(r) == 1 && r[0].LastError != "" && r[0].LeaseOwner == "" {
			e.clock.Advance(time.Minute)
			e.worker.Nudge()
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The fake records the send before the worker marks the event done:
	// wait for the mark.
	r := e.inbound.Rows()[0]
	for r.DoneAt.IsZero() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		r = e.inbound.Rows()[0]
	}
	if r.Attempts < 2 || r.DoneAt.IsZero() {
		t.Fatalf("row %+v", r)
	}
	if sent := e.fb.Sent(); len(sent) != 1 || sent[0].Text != e.text("en", "messenger_help") {
		t.Fatalf("sent %+v", sent)
	}
}

func TestSignatureHelperMatchesMeta(t *testing.T) {
	t.Parallel()
	body := []byte(`{"object":"page"}`)
	m := hmac.New(sha256.New, []byte("s"))
	m.Write(body)
	if fbfake.Sign("s", body) != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Fatal("fbfake.Sign")
	}
	h := &Hub{pages: []*page{{cfg: PageConfig{AppSecret: "a"}}, {cfg: PageConfig{AppSecret: "s"}}}}
	sig, ok := parseSignature(fbfake.Sign("s", body))
	if !ok {
		t.Fatal("a signature from fbfake.Sign does not parse")
	}
	if secret, ok := h.checkSignature(sig, body); !ok || secret != "s" {
		t.Fatal("second app's secret not tried")
	}
}

// readSpy is a request body that records whether anything read it.
type readSpy struct{ read bool }

func (r *readSpy) Read(p []byte) (int, error) {
	r.read = true
	return 0, io.EOF
}

// A delivery whose signature header could never match is refused before
// its body is read: an unauthenticated sender cannot make the service hold
// its upload in memory.
func TestUnsignedDeliveryRefusedBeforeTheBodyIsRead(t *testing.T) {
	h := &Hub{pages: []*page{{cfg: PageConfig{AppSecret: "s"}}}, log: slog.New(slog.DiscardHandler)}
	for _, header := range []string{"", "sha1=abc", "sha256=", "sha256=" + strings.Repeat("z", 64), "sha256=" + strings.Repeat("a", 63)} {
		spy := &readSpy{}
		r := httptest.NewRequest(http.MethodPost, WebhookPath, spy)
		if header != "" {
			r.Header.Set("X-Hub-Signature-256", header)
		}
		w := httptest.NewRecorder()
		h.WebhookHandler().ServeHTTP(w, r)
		if w.Code != http.StatusForbidden || spy.read {
			t.Fatalf("header %q: status %d, body read %v", header, w.Code, spy.read)
		}
	}
}
