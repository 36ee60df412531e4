package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// TestRealStoreConcurrentLinkAndUnlink: many chats try to link to one site
// user while the site unlinks it again and again. The user is never linked
// to two persons, no half-written link remains, and the link.created /
// link.deleted events alternate and agree with the final state and with
// every acknowledged answer.
func TestRealStoreConcurrentLinkAndUnlink(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		e := newRealEnv(t, st)
		const chats = 40
		pins := make([]pairing.IssuedPIN, chats)
		for i := range pins {
			pins[i] = e.issue(fmt.Sprint("race-", i))
		}
		var mu sync.Mutex
		answers := map[string]int{}
		unlinked := 0
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range chats {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				s, c, _ := e.post(e.key, "/v1/authorize", map[string]string{"buid": pins[i].BUID, "pin": pins[i].PIN, "user_id": "shared-user"})
				mu.Lock()
				answers[fmt.Sprint(s, " ", c)]++
				mu.Unlock()
			}()
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/v1/links/shared-user", nil)
				req.Header.Set("Authorization", "Bearer "+e.key)
				res, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var out struct {
					Unlinked bool `json:"unlinked"`
				}
				_ = json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Errorf("unlink: %d", res.StatusCode)
				}
				if out.Unlinked {
					mu.Lock()
					unlinked++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		for a := range answers {
			if a != "200 linked" && a != "200 conflict" {
				t.Fatalf("unexpected answer %q (%v)", a, answers)
			}
		}

		ctx := context.Background()
		evs, err := st.SiteEventsAfter(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		created, deleted, linkedNow := 0, 0, false
		for _, ev := range evs {
			if ev.UserID != "shared-user" {
				continue
			}
			switch ev.Type {
			case pairing.EventLinkCreated:
				if linkedNow {
					t.Fatalf("link.created while already linked: %v", evs)
				}
				created, linkedNow = created+1, true
			case pairing.EventLinkDeleted:
				if !linkedNow {
					t.Fatalf("link.deleted while not linked: %v", evs)
				}
				deleted, linkedNow = deleted+1, false
			}
		}
		if created != answers["200 linked"] || deleted != unlinked {
			t.Fatalf("events created=%d deleted=%d, answers linked=%d unlinked=%d", created, deleted, answers["200 linked"], unlinked)
		}
		rows := 0
		for i := range pins {
			w, err := st.WebUserByPerson(ctx, pins[i].Lead.PersonID)
			if err != nil {
				t.Fatal(err)
			}
			if w.UserID == "shared-user" {
				rows++
			}
		}
		_, err = st.WebUserByUserID(ctx, "shared-user")
		if linkedNow != (err == nil) || rows != map[bool]int{true: 1, false: 0}[linkedNow] {
			t.Fatalf("final state: events say linked=%v, rows holding the user=%d, lookup err=%v", linkedNow, rows, err)
		}
		if n, _ := st.Persons(ctx); n != chats {
			t.Fatalf("%d persons for %d chats", n, chats)
		}
	})
}
