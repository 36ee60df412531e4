package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// The promises that must hold under concurrency, through the whole HTTP
// stack, on real SQLite and real PostgreSQL.

type realEnv struct {
	t   *testing.T
	svc *pairing.Service
	st  *store.Store
	srv *httptest.Server
	key string
}

func newRealEnv(t *testing.T, st *store.Store) *realEnv {
	t.Helper()
	svc, err := pairing.New(st, pairing.Config{Secret: []byte(strings.Repeat("k", 32)), LinkURL: "https://site.example/p?b={buid}"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{}, Deps{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	_, key, err := svc.CreateAPIKey(context.Background(), "site")
	if err != nil {
		t.Fatal(err)
	}
	return &realEnv{t: t, svc: svc, st: st, srv: srv, key: key}
}

func (e *realEnv) issue(ext string) pairing.IssuedPIN {
	e.t.Helper()
	p, err := e.svc.IssuePIN(context.Background(), pairing.LeadKey{Channel: "telegram", ExternalID: ext}, pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{Force: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// post returns status and error code (or outcome) without failing the test
// from a goroutine.
func (e *realEnv) post(key, path string, body any) (int, string, map[string]any) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	if em, ok := out["error"].(map[string]any); ok {
		code, _ := em["code"].(string)
		return res.StatusCode, code, out
	}
	o, _ := out["outcome"].(string)
	return res.StatusCode, o, out
}

// fanOut runs n requests at once and counts the answers by "status code".
func fanOut(n int, fn func(i int) (int, string)) map[string]int {
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, code := fn(i)
			mu.Lock()
			counts[fmt.Sprint(status, " ", code)]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func TestRealStoreConcurrentAuthorizeSpendsOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newRealEnv(t, st)
		p := e.issue("1")
		counts := fanOut(200, func(int) (int, string) {
			s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN})
			return s, c
		})
		if counts["200 register"] != 1 || counts["422 pin_used"] != 199 {
			t.Fatalf("answers %v, want one register and 199 pin_used", counts)
		}
	})
}

func TestRealStoreConcurrentGuessesCapped(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newRealEnv(t, st)
		p := e.issue("1")
		wrong := "000000"
		if p.PIN == wrong {
			wrong = "111111"
		}
		counts := fanOut(500, func(int) (int, string) {
			s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": wrong})
			return s, c
		})
		// Every attempt is a failure: the key's budget (300 by default)
		// lets exactly 300 be evaluated, however many run at once.
		if counts["422 pin_invalid"] != 5 || counts["423 pin_locked"] != 295 || counts["429 rate_limited"] != 200 {
			t.Fatalf("answers %v: want 5 pin_invalid, 295 pin_locked, 200 rate_limited", counts)
		}
		_, other, err := e.svc.CreateAPIKey(context.Background(), "other-site")
		if err != nil {
			t.Fatal(err)
		}
		if s, c, _ := e.post(other, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN}); s != 423 || c != "pin_locked" {
			t.Fatalf("right PIN after the lock: %d %s", s, c)
		}
		w, err := st.WebUserByPerson(context.Background(), p.Lead.PersonID)
		if err != nil || w.FailedAttempts != 5 {
			t.Fatalf("counter %d (%v), want exactly 5", w.FailedAttempts, err)
		}
	})
}

func TestRealStoreConcurrentGrantSpentOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newRealEnv(t, st)
		p := e.issue("1")
		_, outcome, body := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN})
		grant, _ := body["grant"].(string)
		if outcome != "register" || grant == "" {
			t.Fatalf("authorize: %v", body)
		}
		counts := fanOut(50, func(i int) (int, string) {
			s, c, _ := e.post(e.key, "/v1/links", map[string]string{"grant": grant, "user_id": fmt.Sprint("u", i)})
			return s, c
		})
		if counts["200 linked"] != 1 || counts["422 grant_used"] != 49 {
			t.Fatalf("answers %v, want one linked and 49 grant_used", counts)
		}
		links, err := st.ListLinks(context.Background(), 0, 10)
		if err != nil || len(links) != 1 {
			t.Fatalf("links %v %v", links, err)
		}
		if n, _ := st.Persons(context.Background()); n != 1 {
			t.Fatalf("%d persons", n)
		}
	})
}

// 10,000 wrong PINs spread over 1,000 BUIDs from one key trip that key's
// failure budget, while another key keeps linking.
func TestRealStoreKeyBudgetIsPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newRealEnv(t, st)
		_, other, err := e.svc.CreateAPIKey(context.Background(), "other-site")
		if err != nil {
			t.Fatal(err)
		}
		pins := make([]pairing.IssuedPIN, 1000)
		for i := range pins {
			pins[i] = e.issue(fmt.Sprint("victim-", i))
		}
		var good sync.WaitGroup
		good.Add(1)
		var goodErr error
		go func() {
			defer good.Done()
			for i := range 20 {
				p := e.issue(fmt.Sprint("good-", i))
				if s, c, _ := e.post(other, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": p.PIN, "user_id": fmt.Sprint("g", i)}); s != 200 || c != "linked" {
					goodErr = fmt.Errorf("other key refused: %d %s", s, c)
					return
				}
			}
		}()
		jobs := make(chan int)
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					p := pins[i%len(pins)]
					wrong := fmt.Sprintf("%06d", (i*7919)%1000000)
					if wrong == p.PIN {
						wrong = fmt.Sprintf("%06d", (i*7919+1)%1000000)
					}
					s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": p.BUID, "pin": wrong})
					mu.Lock()
					counts[fmt.Sprint(s, " ", c)]++
					mu.Unlock()
				}
			}()
		}
		for i := range 10000 {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		good.Wait()
		if goodErr != nil {
			t.Fatal(goodErr)
		}
		evaluated := counts["422 pin_invalid"] + counts["423 pin_locked"]
		// Each attempt reserves its failure before it is evaluated, so not
		// even the 16 requests in flight can pass the budget.
		if evaluated+counts["404 buid_unknown"] != 300 || counts["429 rate_limited"] != 9700 {
			t.Fatalf("answers %v: the key's budget (300) should stop the guessing", counts)
		}
	})
}
