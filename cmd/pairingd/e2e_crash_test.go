package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// try does one API request and reports the status and error code or
// outcome; ok is false when no answer came back (the process was killed).
func try(base, method, path, key string, body any) (status int, code string, ok bool) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", false
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, "", false
	}
	var out struct {
		Outcome string `json:"outcome"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &out)
	if out.Error.Code != "" {
		return res.StatusCode, out.Error.Code, true
	}
	return res.StatusCode, out.Outcome, true
}

// issueMany issues n PINs for n new Telegram chats on the binary's
// database, with the configuration the binary reads from env.
func issueMany(t *testing.T, dir string, env []string, n int) []issued {
	t.Helper()
	getenv := func(k string) string {
		for _, kv := range env {
			if name, v, ok := strings.Cut(kv, "="); ok && name == k {
				return v
			}
		}
		return ""
	}
	cfg, err := loadConfig("", getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := newService(ctx, cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]issued, n)
	for i := range out {
		p, err := svc.IssuePIN(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: fmt.Sprint("crash-", i)},
			pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = issued{BUID: p.BUID, PIN: p.PIN, URL: p.URL, ExpiresAt: p.ExpiresAt}
	}
	return out
}

// tryNotify queues a notification for user and returns the status and
// the message id; ok is false when no answer came back.
func tryNotify(base, key, user string) (status int, id int64, ok bool) {
	req, _ := http.NewRequest("POST", base+"/v1/users/"+user+"/messages", strings.NewReader(`{"text":"hello"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, false
	}
	defer res.Body.Close()
	var out struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return 0, 0, false
	}
	return res.StatusCode, out.ID, true
}

// op is one state change the driver asked for, in order per site user.
type op struct {
	link  bool // true: linked by authorize; false: unlinked
	acked bool // the client saw the service confirm it
}

// TestBinaryCrashLoop keeps pairing, linking and unlinking through the API
// while the binary is killed with SIGKILL at random moments and restarted,
// 30 times. Afterwards: every change the client saw acknowledged is in the
// database (or was followed by a later, unacknowledged change of the same
// user), no PIN was accepted twice, and SQLite's integrity check is ok.
func TestBinaryCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop: long")
	}
	cycles := 30
	if v, err := strconv.Atoi(os.Getenv("PAIRINGD_CRASH_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	dir := t.TempDir()
	env := baseEnv(dir, "PAIRINGD_LOG_LEVEL=info")
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))

	// PINs are issued up front, in this process, through the same service
	// code the bot uses (the CLI would take seconds for hundreds).
	pins := issueMany(t, dir, env, 40*cycles)

	ops := map[string][]op{} // site user -> changes in order
	spent := map[int]bool{}  // pins[i] acknowledged as spent
	next := 0                // next unused PIN
	var accepted []int64     // notification ids answered 202
	rng := rand.New(rand.NewPCG(1, 2))
	for cycle := 0; cycle < cycles && next < len(pins); cycle++ {
		in := start(t, dir, env)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for next < len(pins) {
				select {
				case <-stop:
					return
				default:
				}
				i := next
				next++
				time.Sleep(time.Duration(i%4) * time.Millisecond)
				user := fmt.Sprint("u-", i)
				ops[user] = append(ops[user], op{link: true})
				s, c, ok := try(in.base, "POST", "/v1/authorize", key, map[string]string{"buid": pins[i].BUID, "pin": pins[i].PIN, "user_id": user})
				if ok && s == 200 && c == "linked" {
					ops[user][len(ops[user])-1].acked = true
					spent[i] = true
				} else if ok && s != 503 {
					t.Errorf("authorize %d: %d %s", i, s, c)
				}
				if !ok {
					return
				}
				// Notify the new link; an accepted message must survive.
				if s, id, ok := tryNotify(in.base, key, user); ok && s == 202 {
					accepted = append(accepted, id)
				} else if !ok {
					return
				}
				// A replay of the same PIN is never a second success.
				if s, c, ok := try(in.base, "POST", "/v1/authorize", key, map[string]string{"buid": pins[i].BUID, "pin": pins[i].PIN}); ok && s == 200 {
					t.Errorf("PIN %d accepted twice: %s", i, c)
				}
				if i%3 == 2 {
					victim := fmt.Sprint("u-", i-1)
					ops[victim] = append(ops[victim], op{link: false})
					if s, _, ok := try(in.base, "DELETE", "/v1/links/"+victim, key, nil); ok && s == 200 {
						ops[victim][len(ops[victim])-1].acked = true
					} else if !ok {
						return
					}
				}
			}
		}()
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		close(stop)
		if err := in.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		in.cmd.Wait()
		<-done
	}
	if next < 20 {
		t.Fatalf("only %d operations ran: the driver did not get going", next)
	}

	in := start(t, dir, env)
	checked := 0
	for user, list := range ops {
		last := list[len(list)-1]
		if !last.acked {
			continue // the last change may or may not have happened
		}
		s, c, ok := try(in.base, "GET", "/v1/links/"+user, key, nil)
		switch {
		case !ok:
			t.Fatalf("GET %s: no answer", user)
		case last.link && s != 200:
			t.Errorf("%s: acknowledged link lost (%d %s)", user, s, c)
		case !last.link && s != 404:
			t.Errorf("%s: acknowledged unlink lost (%d %s)", user, s, c)
		}
		checked++
	}
	for i := range spent {
		if s, c, _ := try(in.base, "POST", "/v1/authorize", key, map[string]string{"buid": pins[i].BUID, "pin": pins[i].PIN}); s == 200 {
			t.Errorf("spent PIN %d accepted again after the crashes: %s", i, c)
		}
	}
	for _, id := range accepted {
		if s, c, _ := try(in.base, "GET", fmt.Sprint("/v1/messages/", id), key, nil); s != 200 {
			t.Errorf("accepted notification %d lost after the crashes: %d %s", id, s, c)
		}
	}
	in.stop()

	st, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: filepath.Join(dir, "pairingd.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if res, err := st.IntegrityCheck(context.Background()); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
	links, err := st.ListLinks(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	linked := len(links)
	t.Logf("%d cycles, %d operations, %d users checked, %d PINs spent, %d links in the database, %d notifications accepted and found", cycles, next, checked, len(spent), linked, len(accepted))
}
