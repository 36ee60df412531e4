package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
)

type okDeliverer struct{ n int }

func (d *okDeliverer) Deliver(context.Context, pairing.OutboundMessage) error { d.n++; return nil }

func newNotifyAPI(t *testing.T) (*env, *okDeliverer) {
	t.Helper()
	e := newEnv(t)
	d := &okDeliverer{}
	e.svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Notifications: d, NotifyLimits: pairing.ChannelLimits{MaxText: 4096, UTF16: true}, NotifyPace: pairing.Pace{}})
	e.link("site-7")
	return e, d
}

func TestNotifyAPI(t *testing.T) {
	t.Parallel()
	e, d := newNotifyAPI(t)
	body := map[string]any{"text": "Your order shipped", "buttons": []map[string]string{{"text": "Track", "url": "https://shop.example/o/7"}}}
	r := e.post("/v1/users/site-7/messages", body, header{"Idempotency-Key", "order-7-shipped"})
	if r.status != http.StatusAccepted || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("notify: %d %s", r.status, r.raw)
	}
	id := int64(r.body["id"].(float64))
	ds := r.body["deliveries"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["status"] != "queued" || ds[0].(map[string]any)["channel"] != "telegram" {
		t.Fatalf("deliveries %s", r.raw)
	}
	// The same key again: the first answer, nothing queued.
	again := e.post("/v1/users/site-7/messages", body, header{"Idempotency-Key", "order-7-shipped"})
	if again.status != http.StatusAccepted || int64(again.body["id"].(float64)) != id || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", again.status, again.raw)
	}
	if n := e.store.Deliveries(); n != 1 {
		t.Fatalf("%d deliveries after a replay", n)
	}
	expect(t, e.post("/v1/users/site-7/messages", map[string]any{"text": "other"}, header{"Idempotency-Key", "order-7-shipped"}),
		http.StatusUnprocessableEntity, "idempotency_key_reused")

	// Sent by a worker, the status is visible.
	w, err := e.svc.NewNotificationWorker(pairing.NotificationWorkerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.RunOnce(e.ctx); n != 1 || err != nil {
		t.Fatalf("worker: %d %v", n, err)
	}
	g := e.do(http.MethodGet, fmt.Sprintf("/v1/messages/%d", id), "")
	if g.status != 200 || g.body["user_id"] != "site-7" || d.n != 1 {
		t.Fatalf("get: %d %s", g.status, g.raw)
	}
	dl := g.body["deliveries"].([]any)[0].(map[string]any)
	if dl["status"] != "delivered" || dl["attempts"] != float64(1) || dl["finished_at"] == nil {
		t.Fatalf("delivery %v", dl)
	}
}

func TestNotifyAPIRefusals(t *testing.T) {
	t.Parallel()
	e, _ := newNotifyAPI(t)
	expect(t, e.post("/v1/users/nobody/messages", map[string]any{"text": "hi"}), 404, "not_linked")
	for name, body := range map[string]string{
		"no text":       `{}`,
		"empty text":    `{"text":""}`,
		"blank text":    `{"text":"   "}`,
		"long text":     `{"text":"` + strings.Repeat("a", 4097) + `"}`,
		"four buttons":  `{"text":"hi","buttons":[` + strings.Repeat(`{"text":"a","url":"https://a.example"},`, 3) + `{"text":"a","url":"https://a.example"}]}`,
		"ftp url":       `{"text":"hi","buttons":[{"text":"a","url":"ftp://a.example/x"}]}`,
		"local url":     `{"text":"hi","buttons":[{"text":"a","url":"http://127.0.0.1/x"}]}`,
		"long title":    `{"text":"hi","buttons":[{"text":"` + strings.Repeat("t", 21) + `","url":"https://a.example"}]}`,
		"unknown field": `{"text":"hi","parse_mode":"HTML"}`,
		"bad channel":   `{"text":"hi","channels":["viber"]}`,
		"text not str":  `{"text":5}`,
	} {
		r := e.do(http.MethodPost, "/v1/users/site-7/messages", body)
		if r.status != 400 || r.errCode() != "invalid_request" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	r := e.post("/v1/users/site-7/messages", map[string]any{"text": "hi"}, header{"Idempotency-Key", "ключ"})
	expect(t, r, 400, "invalid_request")
	if n := e.store.Deliveries(); n != 0 {
		t.Fatalf("a refused request queued %d deliveries", n)
	}
	expect(t, e.do(http.MethodGet, "/v1/messages/abc", ""), 400, "invalid_request")
	expect(t, e.do(http.MethodGet, "/v1/messages/0", ""), 400, "invalid_request")
	expect(t, e.do(http.MethodGet, "/v1/messages/999999", ""), 404, "not_found")
	expect(t, e.do(http.MethodGet, "/v1/messages/1", "", header{"Authorization", ""}), 401, "unauthorized")
	expect(t, e.do(http.MethodPost, "/v1/users/site-7/messages", `{"text":"hi"}`, header{"Authorization", ""}), 401, "unauthorized")
}
