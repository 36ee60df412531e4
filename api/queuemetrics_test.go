package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/pairing/pairingtest"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// scriptedDeliverer answers each send with the next error of its script
// (nil once the script is used up).
type scriptedDeliverer struct{ errs []error }

func (d *scriptedDeliverer) Deliver(context.Context, pairing.OutboundMessage) error {
	if len(d.errs) == 0 {
		return nil
	}
	err := d.errs[0]
	d.errs = d.errs[1:]
	return err
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	return string(b)
}

// gauge reads one series ("name" or `name{label="v"}`) from a scrape.
func gauge(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s in:\n%s", series, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMetricsQueueGauges drives the real queues on a real store and
// checks that every gauge on /metrics follows: a notification queued, aged,
// failed and delivered, site events written and given up, an inbound
// event stored and handled.
func TestMetricsQueueGauges(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		clk := pairingtest.NewClock(t0)
		svc, err := pairing.New(st, pairing.Config{Secret: []byte(strings.Repeat("k", 32)), LinkURL: "https://site.example/p?b={buid}"}, pairing.WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		tg := &scriptedDeliverer{}
		svc.RegisterChannel(pairingtest.Channel{ChannelName: "telegram", Notifications: tg, NotifyLimits: pairing.ChannelLimits{MaxText: 4096}, NotifyPace: pairing.Pace{}})
		worker, err := svc.NewNotificationWorker(pairing.NotificationWorkerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{}, Deps{Service: svc, Queues: st, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(e)
		defer srv.Close()

		m := scrape(t, srv.URL)
		for series, want := range map[string]float64{
			"pairingd_queue_stats_up": 1, `pairingd_notify_deliveries{status="queued"}`: 0,
			`pairingd_notify_deliveries{status="sending"}`: 0, `pairingd_notify_deliveries{status="failed"}`: 0,
			"pairingd_notify_oldest_pending_age_seconds": 0, `pairingd_site_events{state="pending"}`: 0,
			`pairingd_site_events{state="failed"}`: 0, "pairingd_inbound_events_pending": 0,
		} {
			if got := gauge(t, m, series); got != want {
				t.Errorf("empty: %s = %g, want %g", series, got, want)
			}
		}
		if !strings.Contains(m, "# TYPE pairingd_notify_deliveries gauge") || !strings.Contains(m, "# TYPE pairingd_http_panics_total counter") {
			t.Fatalf("types or counters missing:\n%s", m)
		}

		// A link writes link.created: one pending site event.
		p, err := svc.IssuePIN(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "42"}, pairing.Profile{}, pairing.IssueOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := svc.Authorize(ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: "u1"}); err != nil || res.Outcome != pairing.OutcomeLinked {
			t.Fatalf("link: %+v %v", res, err)
		}
		if got := gauge(t, scrape(t, srv.URL), `pairingd_site_events{state="pending"}`); got != 1 {
			t.Fatalf("site events pending after a link: %g", got)
		}

		// A notification waits: queued, and it ages with the clock.
		if _, err := svc.Notify(ctx, pairing.NotifyRequest{UserID: "u1", Text: "hello"}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(90 * time.Second)
		m = scrape(t, srv.URL)
		if q, age := gauge(t, m, `pairingd_notify_deliveries{status="queued"}`), gauge(t, m, "pairingd_notify_oldest_pending_age_seconds"); q != 1 || age != 90 {
			t.Fatalf("queued %g, oldest age %g; want 1 and 90", q, age)
		}

		// The platform refuses it for good: failed, nothing pending, and a
		// message.failed event joins the pending site events.
		tg.errs = []error{&pairing.DeliveryError{Permanent: true, Reason: pairing.ReasonRejected, Detail: "chat not found"}}
		if n, err := worker.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("worker: %d %v", n, err)
		}
		m = scrape(t, srv.URL)
		for series, want := range map[string]float64{
			`pairingd_notify_deliveries{status="queued"}`: 0, `pairingd_notify_deliveries{status="failed"}`: 1,
			"pairingd_notify_oldest_pending_age_seconds": 0, `pairingd_site_events{state="pending"}`: 2,
		} {
			if got := gauge(t, m, series); got != want {
				t.Errorf("after a failed send: %s = %g, want %g", series, got, want)
			}
		}

		// A second one is delivered: queued goes up, then back to 0; failed
		// stays 1.
		if _, err := svc.Notify(ctx, pairing.NotifyRequest{UserID: "u1", Text: "again"}); err != nil {
			t.Fatal(err)
		}
		if got := gauge(t, scrape(t, srv.URL), `pairingd_notify_deliveries{status="queued"}`); got != 1 {
			t.Fatalf("queued: %g", got)
		}
		if n, err := worker.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("worker: %d %v", n, err)
		}
		m = scrape(t, srv.URL)
		if q, f := gauge(t, m, `pairingd_notify_deliveries{status="queued"}`), gauge(t, m, `pairingd_notify_deliveries{status="failed"}`); q != 0 || f != 1 {
			t.Fatalf("after a delivery: queued %g failed %g", q, f)
		}

		// The site refuses the oldest event with 410: one failed.
		evs, err := st.ClaimSiteEvents(ctx, "d", clk.Now(), time.Minute, 1)
		if err != nil || len(evs) != 1 {
			t.Fatalf("claim: %v %v", evs, err)
		}
		if err := st.FailSiteEvent(ctx, evs[0].ID, "d", clk.Now(), "HTTP 410"); err != nil {
			t.Fatal(err)
		}
		m = scrape(t, srv.URL)
		if f, p := gauge(t, m, `pairingd_site_events{state="failed"}`), gauge(t, m, `pairingd_site_events{state="pending"}`); f != 1 || p != 2 {
			t.Fatalf("site events failed %g pending %g; want 1 and 2 (message.failed, message.delivered)", f, p)
		}

		// An inbound event stored, then handled.
		if _, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{{Source: "telegram", Key: "1", Payload: []byte("{}")}}, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if got := gauge(t, scrape(t, srv.URL), "pairingd_inbound_events_pending"); got != 1 {
			t.Fatalf("inbound pending %g", got)
		}
		items, err := st.ClaimInbound(ctx, "w", clk.Now(), time.Minute, 1)
		if err != nil || len(items) != 1 {
			t.Fatalf("claim inbound: %v %v", items, err)
		}
		// The shared gauges: the claimed event is running, an hour old.
		clk.Advance(time.Hour)
		m = scrape(t, srv.URL)
		if r, p, a := gauge(t, m, `pairingd_queue_jobs{queue="inbound",state="running"}`), gauge(t, m, `pairingd_queue_jobs{queue="inbound",state="pending"}`),
			gauge(t, m, `pairingd_queue_oldest_pending_age_seconds{queue="inbound"}`); r != 1 || p != 0 || a != 3600 {
			t.Fatalf("inbound running %g pending %g oldest %gs", r, p, a)
		}
		if f, p := gauge(t, m, `pairingd_queue_jobs{queue="site_events",state="failed"}`), gauge(t, m, `pairingd_queue_jobs{queue="site_events",state="pending"}`); f != 1 || p != 2 {
			t.Fatalf("site events by queue_jobs: failed %g pending %g", f, p)
		}
		if err := st.FinishInbound(ctx, items[0].ID, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if got := gauge(t, scrape(t, srv.URL), "pairingd_inbound_events_pending"); got != 0 {
			t.Fatalf("inbound pending after handling %g", got)
		}
	})
}

type failingQueues struct{}

func (failingQueues) QueueStats(context.Context) (pairing.QueueStats, error) {
	return pairing.QueueStats{}, errors.New("database is down")
}

// TestMetricsQueueGaugesWhenTheDatabaseFails: the counters are still
// served, the queue gauges are left out and pairingd_queue_stats_up says
// why.
func TestMetricsQueueGaugesWhenTheDatabaseFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDeps(func(d *Deps) { d.Queues = failingQueues{} }))
	r := e.do(http.MethodGet, "/metrics", "")
	if r.status != http.StatusOK || !strings.Contains(r.raw, "pairingd_queue_stats_up 0\n") ||
		strings.Contains(r.raw, "pairingd_notify_deliveries{") || !strings.Contains(r.raw, "pairingd_http_panics_total 0") {
		t.Fatalf("%d\n%s", r.status, r.raw)
	}
}
