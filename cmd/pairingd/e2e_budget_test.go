package main

import (
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/store/storetest"
)

// The API key's failure budget on PostgreSQL, against the real binary
// (issue 16, item 4): nothing is reserved ahead, so correct PINs are
// served while the budget has room and a killed process leaks no charge.

// budgetEnv is a binary's environment on a fresh PostgreSQL schema with a
// budget of 50 failures per key, and a connection to that schema.
func budgetEnv(t *testing.T) (string, []string, *sql.DB) {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	dir := t.TempDir()
	var env []string
	for _, kv := range baseEnv(dir) {
		// issueMany reads the first of a duplicate key, the binary the last.
		if !strings.HasPrefix(kv, "PAIRINGD_DATABASE_DSN=") && !strings.HasPrefix(kv, "PAIRINGD_LOG_LEVEL=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PAIRINGD_DATABASE_DRIVER=postgres",
		"PAIRINGD_DATABASE_DSN="+dsn,
		"PAIRINGD_PAIRING_SECRET=budget-test-secret-0123456789abcdef",
		"PAIRINGD_PAIRING_KEY_FAILURE_BUDGET=50",
		"PAIRINGD_LOG_LEVEL=info",
	)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dir, env, db
}

func keyFailures(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT failures FROM api_keys WHERE name = 'site'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// 45 of the key's 50 failures used, then 20 correct PINs at once: all 20
// succeed, and the key still counts 45.
func TestBinaryBudgetNearlyUsedServesCorrectPINs(t *testing.T) {
	dir, env, db := budgetEnv(t)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	pins := issueMany(t, dir, env, 65)
	in := start(t, dir, env)
	for i := range 45 {
		wrong := []byte(pins[i].PIN)
		wrong[0] = '0' + (wrong[0]-'0'+1)%10
		if s, c, _ := try(in.base, "POST", "/v1/authorize", key, map[string]string{"buid": pins[i].BUID, "pin": string(wrong)}); s != 422 || c != "pin_invalid" {
			t.Fatalf("wrong PIN %d: %d %s", i, s, c)
		}
	}
	if n := keyFailures(t, db); n != 45 {
		t.Fatalf("key failures %d after 45 wrong PINs", n)
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	statuses := make([]string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := pins[45+i]
			<-gate
			s, c, _ := try(in.base, "POST", "/v1/authorize", key, map[string]string{"buid": p.BUID, "pin": p.PIN})
			if s != 200 || c != "register" {
				statuses[i] = c
			}
		}()
	}
	close(gate)
	wg.Wait()
	refused := 0
	for i, c := range statuses {
		if c != "" {
			refused++
			t.Errorf("correct PIN %d refused: %s", i, c)
		}
	}
	if n := keyFailures(t, db); n != 45 {
		t.Errorf("key failures %d after 20 correct PINs, want 45", n)
	}
	t.Logf("20 concurrent correct PINs with 45 of 50 failures used: %d refused", refused)
}

// Five SIGKILLs of a binary that is sending only correct PINs, eight at a
// time: the key ends with no failure charged.
func TestBinaryBudgetSurvivesKill9(t *testing.T) {
	dir, env, db := budgetEnv(t)
	key := lastLine(cli(t, dir, env, "keys", "create", "--name", "site"))
	pins := issueMany(t, dir, env, 2500)
	var mu sync.Mutex
	next, answered, lost := 0, 0, 0
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next == len(pins) {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for cycle := range 5 {
		in := start(t, dir, env)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i, ok := take()
					if !ok {
						return
					}
					s, c, ok := try(in.base, "POST", "/v1/authorize", key, map[string]string{"buid": pins[i].BUID, "pin": pins[i].PIN})
					mu.Lock()
					switch {
					case !ok:
						lost++
					case s == 200:
						answered++
					default:
						t.Errorf("cycle %d: correct PIN %d answered %d %s", cycle, i, s, c)
					}
					mu.Unlock()
					if !ok {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+100*cycle) * time.Millisecond)
		if err := in.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		in.cmd.Wait()
		wg.Wait()
	}
	if answered == 0 || lost == 0 {
		t.Fatalf("%d answered, %d cut off by the kills: the kills did not land mid-load", answered, lost)
	}
	if n := keyFailures(t, db); n != 0 {
		t.Fatalf("a key that only sent correct PINs has %d failures charged after 5 SIGKILLs", n)
	}
	t.Logf("5 SIGKILLs: %d correct PINs answered, %d requests cut off, 0 failures charged", answered, lost)
}
