package pairing_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// budgetEnv is a service whose keys may fail budget times, and a key that
// has already used `used` of them, as earlier refused guesses would have.
func budgetEnv(t *testing.T, newEnv newEnvFunc, budget, used int) (*env, int64) {
	t.Helper()
	e := newEnv(t, func(c *pairing.Config) { c.KeyFailureBudget = budget })
	k, _, err := e.svc.CreateAPIKey(e.ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	for range used {
		if _, err := e.store.AddKeyFailure(e.ctx, k.ID, e.clock.Now(), e.svc.Config().KeyFailureWindow); err != nil {
			t.Fatal(err)
		}
	}
	return e, k.ID
}

// The budget nearly used (45 of 50): 20 correct PINs at once all succeed,
// and none of them is counted against the key (nothing is reserved).
func TestKeyBudgetNearlyUsedServesCorrectPINs(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e, keyID := budgetEnv(t, newEnv, 50, 45)
		pins := make([]pairing.IssuedPIN, 20)
		for i := range pins {
			pins[i] = e.issue(fmt.Sprint("right-", i))
		}
		errs := make([]error, len(pins))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, p := range pins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: keyID})
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("correct PIN %d refused: %v", i, err)
			}
		}
		if n, err := e.store.KeyFailures(e.ctx, keyID, e.clock.Now(), time.Hour); err != nil || n != 45 {
			t.Fatalf("key failures %d, %v; want 45", n, err)
		}
	})
}

// The moment the budget runs out, with real concurrency: 5 failures of 50
// are left and 40 wrong guesses (on 40 rows) race with 20 correct PINs.
// Exactly 5 wrong guesses are answered pin_invalid and counted on their
// rows; every other wrong guess is rate_limited and left its row as if it
// had not been evaluated; a correct PIN either succeeds or is rate_limited
// with its PIN still unspent; the key ends at exactly 50 failures.
func TestKeyBudgetRunsOutExactlyUnderConcurrency(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e, keyID := budgetEnv(t, newEnv, 50, 45)
		type try struct {
			p     pairing.IssuedPIN
			right bool
			err   error
		}
		var tries []*try
		for i := range 40 {
			tries = append(tries, &try{p: e.issue(fmt.Sprint("wrong-", i))})
		}
		for i := range 20 {
			tries = append(tries, &try{p: e.issue(fmt.Sprint("right-", i)), right: true})
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, tr := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pin := tr.p.PIN
				if !tr.right {
					pin = wrongPIN(pin)
				}
				<-start
				_, tr.err = e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: tr.p.BUID, PIN: pin, KeyID: keyID})
			}()
		}
		close(start)
		wg.Wait()
		invalid, counted := 0, 0
		for _, tr := range tries {
			wu, err := e.store.WebUserByPerson(e.ctx, tr.p.Lead.PersonID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tr.right && tr.err == nil:
			case tr.right && errors.Is(tr.err, pairing.ErrRateLimited):
				if !wu.PINUsedAt.IsZero() {
					t.Errorf("a rate-limited correct PIN was spent")
				}
			case !tr.right && errors.Is(tr.err, pairing.ErrPINInvalid):
				invalid++
				if wu.FailedAttempts != 1 {
					t.Errorf("answered pin_invalid, row counts %d", wu.FailedAttempts)
				}
			case !tr.right && errors.Is(tr.err, pairing.ErrRateLimited):
				if wu.FailedAttempts != 0 || !wu.LockedUntil.IsZero() {
					t.Errorf("rate-limited guess left %d attempts on its row", wu.FailedAttempts)
				}
			default:
				t.Errorf("right=%v: unexpected %v", tr.right, tr.err)
			}
			if !tr.right {
				counted += wu.FailedAttempts
			}
		}
		if invalid != 5 || counted != 5 {
			t.Fatalf("%d wrong guesses answered pin_invalid, %d counted on rows; want 5 and 5", invalid, counted)
		}
		if n, err := e.store.KeyFailures(e.ctx, keyID, e.clock.Now(), time.Hour); err != nil || n != 50 {
			t.Fatalf("key failures %d, %v; want 50", n, err)
		}
		audited := map[string]int{}
		for _, a := range e.store.Audit() {
			if a.Action == "authorize" {
				audited[a.Outcome]++
			}
		}
		if audited["pin_invalid"] != 5 || audited["rate_limited"] != 35+20-audited["match"]-audited["register"] {
			t.Fatalf("audit %v", audited)
		}
	})
}

// Once the budget is used up, a guess on an undecodable BUID is refused
// rate_limited and counts nothing; before, it is buid_unknown and counts.
func TestKeyBudgetChargesUndecodableBUIDs(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e, keyID := budgetEnv(t, newEnv, 2, 0)
		for i := range 3 {
			_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: "not-a-buid", PIN: "123456", KeyID: keyID})
			want := pairing.ErrBUIDUnknown
			if i == 2 {
				want = pairing.ErrRateLimited
			}
			if !errors.Is(err, want) {
				t.Fatalf("try %d: %v, want %v", i, err, want)
			}
		}
		if n, _ := e.store.KeyFailures(e.ctx, keyID, e.clock.Now(), time.Hour); n != 2 {
			t.Fatalf("key failures %d, want 2", n)
		}
		var outcomes []string
		for _, a := range e.store.Audit() {
			outcomes = append(outcomes, a.Outcome)
		}
		if fmt.Sprint(outcomes) != "[buid_unknown buid_unknown rate_limited]" {
			t.Fatalf("audit %v", outcomes)
		}
	})
}
