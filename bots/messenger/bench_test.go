package messenger

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store/storetest"
)

// BenchmarkWebhookIngestion posts signed Messenger deliveries of 10 events
// (10 people) each to the real webhook handler over HTTP, with the
// inbound queue on SQLite; the worker does not run, so this is what the
// webhook accepts. It reports accepted events/s and the p99 latency of a
// delivery.
//
//	go test -run '^$' -bench WebhookIngestion -benchtime 3s ./bots/messenger/
func BenchmarkWebhookIngestion(b *testing.B) {
	st := storetest.SQLite(b)
	e := newEnv(b)
	e.hub.inbox = pairing.NewInboundWorker(st, pairing.InboundWorkerConfig{})
	srv := httptest.NewServer(e.hub.WebhookHandler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const perDelivery = 10
	var (
		seq  atomic.Int64
		mu   sync.Mutex
		lats []time.Duration
	)
	b.SetParallelism(8) // 8 x GOMAXPROCS concurrent senders
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			n := seq.Add(1)
			evs := make([]map[string]any, perDelivery)
			for i := range evs {
				evs[i] = fbfake.Text(fmt.Sprint(5000+i), fmt.Sprintf("m.bench.%d.%d", n, i), "help")
			}
			body := fbfake.Delivery(pageA, evs...)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, bytes.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", fbfake.Sign(secretA, body))
			t := time.Now()
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			res.Body.Close()
			mine = append(mine, time.Since(t))
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
		mu.Lock()
		lats = append(lats, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(began)
	b.StopTimer()
	slices.Sort(lats)
	if len(lats) > 0 {
		b.ReportMetric(float64(len(lats)*perDelivery)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	}
}
