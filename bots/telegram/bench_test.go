package telegram

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

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// BenchmarkWebhookIngestion posts Telegram updates (one per request, as
// Telegram sends them) to the real webhook handler over HTTP, with the
// inbound queue on SQLite; the worker does not run, so this is what the
// webhook accepts. It reports accepted updates/s and the p99 latency.
//
//	go test -run '^$' -bench WebhookIngestion -benchtime 3s ./bots/telegram/
func BenchmarkWebhookIngestion(b *testing.B) {
	e := newEnv(b, webhookMode("https://pairing.example"))
	srv := httptest.NewServer(e.bot.WebhookHandler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		seq  atomic.Int64
		mu   sync.Mutex
		lats []time.Duration
	)
	b.SetParallelism(16)
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			n := seq.Add(1)
			body := fmt.Appendf(nil, `{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Ann","language_code":"en"},`+
				`"chat":{"id":%d,"type":"private"},"date":1700000000,"text":"/help"}}`, n, n, 5000+n%500, 5000+n%500)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath(chName), bytes.NewReader(body))
			req.Header.Set(tgfake.SecretHeader, e.bot.secret)
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
		b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "updates/s")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	}
}
