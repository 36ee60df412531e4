package pairing_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

func (e *env) issue(ext string) pairing.IssuedPIN {
	e.t.Helper()
	p, err := e.svc.IssuePIN(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: ext}, pairing.Profile{FirstName: "Ann", Locale: "en"}, pairing.IssueOptions{Force: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) issueOn(channel, ext string) pairing.IssuedPIN {
	e.t.Helper()
	p, err := e.svc.IssuePIN(e.ctx, pairing.LeadKey{Channel: channel, ExternalID: ext}, pairing.Profile{}, pairing.IssueOptions{Force: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) authorize(p pairing.IssuedPIN, userID string) (pairing.Result, error) {
	return e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, UserID: userID})
}

// link makes ext's person linked to userID through the register path.
func (e *env) link(ext, userID string) {
	e.t.Helper()
	e.linkOn("telegram", ext, userID)
}

func (e *env) linkOn(channel, ext, userID string) {
	e.t.Helper()
	res, err := e.authorize(e.issueOn(channel, ext), userID)
	if err != nil || res.Outcome != pairing.OutcomeLinked {
		e.t.Fatalf("link %s to %s: %v %v", ext, userID, res.Outcome, err)
	}
}

func wrongPIN(pin string) string {
	b := []byte(pin)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestAuthorizeBranches(t *testing.T) {
	t.Parallel()
	t.Run("register then match", func(t *testing.T) {
		e := newEnv(t)
		res, err := e.authorize(e.issue("1"), "")
		if err != nil || res.Outcome != pairing.OutcomeRegister || res.Grant == nil || res.Lead.Profile.FirstName != "Ann" {
			t.Fatalf("register: %+v %v", res, err)
		}
		if !strings.HasPrefix(res.Grant.Token, "pgr_") || !res.Grant.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("grant: %+v", res.Grant)
		}
		l, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "u1"})
		if err != nil || l.Outcome != pairing.OutcomeLinked || l.UserID != "u1" {
			t.Fatalf("complete: %+v %v", l, err)
		}
		res, err = e.authorize(e.issue("1"), "")
		if err != nil || res.Outcome != pairing.OutcomeMatch || res.UserID != "u1" || res.Grant != nil {
			t.Fatalf("match: %+v %v", res, err)
		}
	})
	t.Run("already linked", func(t *testing.T) {
		e := newEnv(t)
		e.link("1", "u1")
		res, err := e.authorize(e.issue("1"), "u1")
		if err != nil || res.Outcome != pairing.OutcomeAlreadyLinked || res.UserID != "u1" {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("linked", func(t *testing.T) {
		e := newEnv(t)
		res, err := e.authorize(e.issue("1"), "u1")
		if err != nil || res.Outcome != pairing.OutcomeLinked || res.UserID != "u1" {
			t.Fatalf("%+v %v", res, err)
		}
		l, err := e.svc.GetLink(e.ctx, "u1")
		if err != nil || len(l.Leads) != 1 || l.Leads[0].ExternalID != "1" || !l.LinkedAt.Equal(t0) {
			t.Fatalf("link: %+v %v", l, err)
		}
		if ev := e.store.SiteEvents(); len(ev) != 1 || ev[0].Type != pairing.EventLinkCreated || ev[0].UserID != "u1" {
			t.Fatalf("events: %+v", ev)
		}
	})
	t.Run("conflict bot linked elsewhere, resolved with replace", func(t *testing.T) {
		e := newEnv(t)
		e.link("1", "U")
		res, err := e.authorize(e.issue("1"), "V")
		if err != nil || res.Outcome != pairing.OutcomeConflict || res.Grant == nil {
			t.Fatalf("%+v %v", res, err)
		}
		if c := res.Conflict; c.Kind != pairing.ConflictBotLinkedElsewhere || c.UserID != "V" || c.LinkedUserID != "U" {
			t.Fatalf("conflict: %+v", c)
		}
		// Nothing changed yet.
		if l, _ := e.svc.GetLink(e.ctx, "U"); l.UserID != "U" {
			t.Fatal("U lost its link before replace")
		}
		// Without replace the grant stays unspent.
		_, err = e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "V"})
		var ce *pairing.ConflictError
		if !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictBotLinkedElsewhere {
			t.Fatalf("want conflict, got %v", err)
		}
		// A conflict grant only links the user it was made for.
		if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "W", Replace: true}); !errors.Is(err, pairing.ErrGrantMismatch) {
			t.Fatalf("want mismatch, got %v", err)
		}
		l, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "V", Replace: true})
		if err != nil || l.Outcome != pairing.OutcomeLinked || l.ReplacedUserID != "U" {
			t.Fatalf("replace: %+v %v", l, err)
		}
		if _, err := e.svc.GetLink(e.ctx, "U"); !errors.Is(err, pairing.ErrNotLinked) {
			t.Fatalf("U still linked: %v", err)
		}
		if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "V", Replace: true}); !errors.Is(err, pairing.ErrGrantUsed) {
			t.Fatalf("grant reuse: %v", err)
		}
	})
	t.Run("conflict user linked elsewhere on the same channel", func(t *testing.T) {
		e := newEnv(t)
		e.link("other", "V")
		res, err := e.authorize(e.issue("1"), "V")
		if err != nil || res.Outcome != pairing.OutcomeConflict || res.Conflict.Kind != pairing.ConflictUserLinkedElsewhere || res.Grant == nil {
			t.Fatalf("%+v %v", res, err)
		}
		l, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "V", Replace: true})
		if err != nil || l.Outcome != pairing.OutcomeLinked {
			t.Fatalf("replace: %+v %v", l, err)
		}
		st, _ := e.svc.Status(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "other"})
		if st.Linked {
			t.Fatal("the other chat kept V")
		}
	})
	t.Run("same human on another channel joins the linked person", func(t *testing.T) {
		e := newEnv(t)
		e.linkOn("fb-shop", "psid-1", "V")
		p := e.issue("1")
		before := e.store.Persons()
		res, err := e.authorize(p, "V")
		if err != nil || res.Outcome != pairing.OutcomeLinked || res.UserID != "V" {
			t.Fatalf("%+v %v", res, err)
		}
		l, _ := e.svc.GetLink(e.ctx, "V")
		if len(l.Leads) != 2 || e.store.Persons() != before-1 {
			t.Fatalf("not merged: %+v persons %d->%d", l, before, e.store.Persons())
		}
	})
}

func TestPINRefusals(t *testing.T) {
	t.Parallel()
	t.Run("wrong PIN counts down and locks; reissue does not reset; cool-down does", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		for i := 1; i <= 3; i++ {
			_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
			var ae *pairing.AttemptsError
			if !errors.As(err, &ae) || !errors.Is(err, pairing.ErrPINInvalid) || ae.AttemptsLeft != 5-i {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		p = e.issue("1") // a new PIN keeps the count
		for i := 4; i <= 5; i++ {
			_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
			if !errors.Is(err, pairing.ErrPINInvalid) {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		_, err := e.authorize(p, "")
		var ae *pairing.AttemptsError
		if !errors.Is(err, pairing.ErrPINLocked) || !errors.As(err, &ae) || !ae.LockedUntil.Equal(t0.Add(15*time.Minute)) {
			t.Fatalf("right PIN while locked: %v", err)
		}
		e.clock.Advance(15 * time.Minute)
		p = e.issue("1")
		if res, err := e.authorize(p, ""); err != nil || res.Outcome != pairing.OutcomeRegister {
			t.Fatalf("after cool-down: %+v %v", res, err)
		}
	})
	t.Run("after a lock has passed the count starts again at 1", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		for range 5 {
			e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
		}
		e.clock.Advance(16 * time.Minute)
		p = e.issue("1")
		_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
		var ae *pairing.AttemptsError
		if !errors.As(err, &ae) || !errors.Is(err, pairing.ErrPINInvalid) || ae.AttemptsLeft != 4 || !ae.LockedUntil.IsZero() {
			t.Fatalf("first wrong PIN after the lock: %v", err)
		}
	})
	t.Run("success resets the count", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		for i := 0; i < 4; i++ {
			e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
		}
		if _, err := e.authorize(p, ""); err != nil {
			t.Fatal(err)
		}
		p = e.issue("1")
		_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
		var ae *pairing.AttemptsError
		if !errors.As(err, &ae) || ae.AttemptsLeft != 4 {
			t.Fatalf("count not reset: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		e.clock.Advance(10 * time.Minute)
		if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrPINExpired) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("used", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		if _, err := e.authorize(p, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrPINUsed) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("PIN normalization: full-width digits and spaces", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		var fw strings.Builder
		for i, r := range p.PIN {
			if i == 3 {
				fw.WriteString("\u3000")
			}
			fw.WriteRune('０' + (r - '0'))
		}
		res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: " " + fw.String() + " "})
		if err != nil || res.Outcome != pairing.OutcomeRegister {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("malformed PIN is invalid_request and counts nothing", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		for _, pin := range []string{"12345", "1234567", "12a456", "", "١٢٣٤٥٦x"} {
			_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: pin})
			var fe *pairing.FieldError
			if !errors.As(err, &fe) || fe.Field != "pin" {
				t.Fatalf("%q: %v", pin, err)
			}
		}
		_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
		var ae *pairing.AttemptsError
		if !errors.As(err, &ae) || ae.AttemptsLeft != 4 {
			t.Fatalf("malformed PINs were counted: %v", err)
		}
	})
	t.Run("bad user_id is invalid_request", func(t *testing.T) {
		e := newEnv(t)
		p := e.issue("1")
		for _, u := range []string{"a\x00b", "a\r\nb", strings.Repeat("x", 10000), "\xff"} {
			if _, err := e.authorize(p, u); !errors.Is(err, pairing.ErrInvalid) {
				t.Fatalf("%q: %v", u, err)
			}
		}
		if _, err := e.authorize(p, ""); err != nil {
			t.Fatalf("PIN spent by invalid requests: %v", err)
		}
	})
}

func TestBUIDRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue("1")
	if len(p.BUID) < 20 || strings.Trim(p.BUID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		t.Fatalf("BUID not URL-safe: %q", p.BUID)
	}
	if !strings.Contains(p.URL, p.BUID) {
		t.Fatalf("URL %q lacks BUID", p.URL)
	}
	bad := []string{"", "x", p.BUID + "a", p.BUID[1:], strings.ToUpper(p.BUID), p.BUID[:10] + "é" + p.BUID[11:], strings.Repeat("a", 100), "../../etc", p.BUID + " "}
	// Tamper each character.
	for i := range p.BUID {
		b := []byte(p.BUID)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		bad = append(bad, string(b))
	}
	for _, b := range bad {
		if b == p.BUID {
			continue
		}
		if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: b, PIN: p.PIN}); !errors.Is(err, pairing.ErrBUIDUnknown) {
			t.Fatalf("%q: %v", b, err)
		}
	}
	// Re-issuing rotates the BUID: the old one dies.
	p2 := e.issue("1")
	if p2.BUID == p.BUID {
		t.Fatal("BUID not rotated")
	}
	if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrBUIDUnknown) {
		t.Fatalf("old BUID: %v", err)
	}
	if _, err := e.authorize(p2, ""); err != nil {
		t.Fatal(err)
	}
}

func TestMagicLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *pairing.Config) { c.MagicLinkTTL = time.Hour })
	p := e.issue("1")
	if !p.MagicExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("magic expiry %v", p.MagicExpiresAt)
	}
	e.clock.Advance(30 * time.Minute) // PIN expired, magic link not
	res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID})
	if err != nil || res.Outcome != pairing.OutcomeRegister {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID}); !errors.Is(err, pairing.ErrPINUsed) {
		t.Fatalf("second use: %v", err)
	}
	p = e.issue("1")
	e.clock.Advance(time.Hour)
	if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID}); !errors.Is(err, pairing.ErrPINExpired) {
		t.Fatalf("after TTL: %v", err)
	}
	// Off by default: a missing PIN is an invalid request.
	e2 := newEnv(t)
	if _, err := e2.svc.Authorize(e2.ctx, pairing.AuthorizeRequest{BUID: e2.issue("1").BUID}); !errors.Is(err, pairing.ErrInvalid) {
		t.Fatalf("magic off: %v", err)
	}
}

func TestGrantRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, _ := e.authorize(e.issue("1"), "")
	for _, g := range []string{"", "nope", "pgr_" + strings.Repeat("A", 43), "pgr_" + strings.Repeat("A", 200)} {
		if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: g, UserID: "u"}); !errors.Is(err, pairing.ErrGrantUnknown) {
			t.Fatalf("%q: %v", g, err)
		}
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "u"}); !errors.Is(err, pairing.ErrGrantExpired) {
		t.Fatalf("expired: %v", err)
	}
	// A register grant whose user is linked elsewhere on the same channel.
	e2 := newEnv(t)
	e2.link("other", "u")
	res, _ = e2.authorize(e2.issue("1"), "")
	_, err := e2.svc.CompleteLink(e2.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "u"})
	var ce *pairing.ConflictError
	if !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictUserLinkedElsewhere {
		t.Fatalf("want user_linked_elsewhere, got %v", err)
	}
}

// A grant issued by an earlier version (a plain 32-byte token stored as its
// SHA-256) is still spent by POST /v1/links after an upgrade.
func TestLegacyGrantStillLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, err := e.authorize(e.issue("1"), "")
	if err != nil || res.Grant == nil {
		t.Fatal(res, err)
	}
	g, err := e.store.GrantByHash(e.ctx, pairing.GrantHash(res.Grant.Token))
	if err != nil {
		t.Fatal(err)
	}
	legacy := "pgr_" + strings.Repeat("Q", 43)
	old := g
	old.ID, old.Hash = 0, pairing.HashToken([]byte(legacy))
	if err := e.store.CreateGrant(e.ctx, old, pairing.AuditEvent{At: old.CreatedAt, Action: "authorize"}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: legacy, UserID: "u1"})
	if err != nil || out.Outcome != pairing.OutcomeLinked || out.UserID != "u1" {
		t.Fatalf("legacy grant: %v %v", out.Outcome, err)
	}
	// Spent once, like any grant.
	if _, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: legacy, UserID: "u1"}); !errors.Is(err, pairing.ErrGrantUsed) {
		t.Fatalf("legacy grant spent twice: %v", err)
	}
}

func TestConcurrentSpendOnce(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		p := e.issue("1")
		var wg sync.WaitGroup
		results := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.authorize(p, "")
				results <- err
			}()
		}
		wg.Wait()
		close(results)
		ok, used := 0, 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, pairing.ErrPINUsed):
				used++
			default:
				t.Errorf("unexpected %v", err)
			}
		}
		if ok != 1 || used != 199 {
			t.Fatalf("ok=%d used=%d", ok, used)
		}
	})
}

func TestConcurrentGuessesCapped(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		p := e.issue("1")
		var wg sync.WaitGroup
		var mu sync.Mutex
		invalid, locked := 0, 0
		for i := 0; i < 500; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, pairing.ErrPINInvalid):
					invalid++
				case errors.Is(err, pairing.ErrPINLocked):
					locked++
				default:
					t.Errorf("unexpected %v", err)
				}
			}()
		}
		wg.Wait()
		if invalid != 5 || locked != 495 {
			t.Fatalf("invalid=%d locked=%d", invalid, locked)
		}
		wu, err := e.store.WebUserByPerson(e.ctx, p.Lead.PersonID)
		if err != nil || wu.FailedAttempts != 5 || !wu.LockedUntil.Equal(t0.Add(15*time.Minute)) {
			t.Fatalf("stored attempts %d locked until %v, %v", wu.FailedAttempts, wu.LockedUntil, err)
		}
		if _, err := e.authorize(p, ""); !errors.Is(err, pairing.ErrPINLocked) {
			t.Fatalf("right PIN after: %v", err)
		}
	})
}

// A spend that changed no row although the row, read right after, looks
// spendable (a concurrent writer decided the UPDATE; only possible where
// writers do not serialize): the PIN is gone for this request, which is
// answered pin_used and counted neither as a wrong PIN nor against the key.
func TestSpendLostToAConcurrentWriter(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t, func(c *pairing.Config) { c.KeyFailureBudget = 20 })
		k, _, err := e.svc.CreateAPIKey(e.ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		p := e.issue("1")
		e.store.MissNextSpends(1)
		_, err = e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: k.ID})
		if !errors.Is(err, pairing.ErrPINUsed) {
			t.Fatalf("want pin_used, got %v", err)
		}
		if n, err := e.store.KeyFailures(e.ctx, k.ID, e.clock.Now(), time.Hour); err != nil || n != 0 {
			t.Fatalf("key failures %d, %v; want 0", n, err)
		}
		wu, err := e.store.WebUserByPerson(e.ctx, p.Lead.PersonID)
		if err != nil || wu.FailedAttempts != 0 {
			t.Fatalf("wrong-PIN count %d, %v; want 0", wu.FailedAttempts, err)
		}
		audit := e.store.Audit()
		if last := audit[len(audit)-1]; last.Action != "authorize" || last.Outcome != "pin_used" {
			t.Fatalf("audited %s %s", last.Action, last.Outcome)
		}
	})
}

func TestKeyFailureBudget(t *testing.T) { t.Parallel(); engines(t, testKeyFailureBudget) }

func testKeyFailureBudget(t *testing.T, newEnv func(*testing.T, ...func(*pairing.Config)) *env) {
	e := newEnv(t, func(c *pairing.Config) { c.KeyFailureBudget = 20 })
	k1, _, _ := e.svc.CreateAPIKey(e.ctx, "sprayer")
	k2, _, _ := e.svc.CreateAPIKey(e.ctx, "good")
	var pins []pairing.IssuedPIN
	for i := 0; i < 10; i++ {
		pins = append(pins, e.issue(fmt.Sprint(i)))
	}
	limited := 0
	for i := 0; i < 40; i++ {
		p := pins[i%10]
		_, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN), KeyID: k1.ID})
		if errors.Is(err, pairing.ErrRateLimited) {
			limited++
		}
	}
	if limited != 20 {
		t.Fatalf("limited %d of 40, want 20", limited)
	}
	p := e.issue("good")
	if res, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: k2.ID}); err != nil || res.Outcome != pairing.OutcomeRegister {
		t.Fatalf("other key: %v", err)
	}
	e.clock.Advance(10 * time.Minute)
	p = e.issue("late")
	if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: k1.ID}); err != nil {
		t.Fatalf("after window: %v", err)
	}
}

// Successful and non-guessing answers give their reserved slot back: a
// key that only pairs correctly is never limited.
func TestKeyFailureBudgetRefundsSuccesses(t *testing.T) {
	t.Parallel()
	engines(t, testKeyFailureBudgetRefundsSuccesses)
}

func testKeyFailureBudgetRefundsSuccesses(t *testing.T, newEnv func(*testing.T, ...func(*pairing.Config)) *env) {
	e := newEnv(t, func(c *pairing.Config) { c.KeyFailureBudget = 3 })
	k, _, _ := e.svc.CreateAPIKey(e.ctx, "site")
	for i := range 10 {
		p := e.issue(fmt.Sprint("ok-", i))
		if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: k.ID}); err != nil {
			t.Fatalf("pairing %d: %v", i, err)
		}
		if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: k.ID}); !errors.Is(err, pairing.ErrPINUsed) {
			t.Fatalf("replay %d: %v", i, err)
		}
	}
	if n, _ := e.store.KeyFailures(e.ctx, k.ID, e.clock.Now(), 10*time.Minute); n != 0 {
		t.Fatalf("%d failures counted for successes and used PINs", n)
	}
	p := e.issue("guess")
	for i := range 3 {
		if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN), KeyID: k.ID}); !errors.Is(err, pairing.ErrPINInvalid) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: p.PIN, KeyID: k.ID}); !errors.Is(err, pairing.ErrRateLimited) {
		t.Fatalf("past the budget even the right PIN is refused before evaluation: %v", err)
	}
}

func TestAuditHasNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.issue("1")
	e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: p.BUID, PIN: wrongPIN(p.PIN)})
	res, _ := e.authorize(p, "")
	e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: "u1"})
	e.svc.Authorize(e.ctx, pairing.AuthorizeRequest{BUID: "garbage", PIN: "123456"})
	audit := e.store.Audit()
	actions := map[string]int{}
	for _, a := range audit {
		actions[a.Action+":"+a.Outcome]++
		s := fmt.Sprintf("%+v", a)
		for _, secret := range []string{p.PIN, p.BUID, res.Grant.Token} {
			if strings.Contains(s, secret) {
				t.Fatalf("audit %s holds a secret", s)
			}
		}
	}
	for _, want := range []string{"authorize:pin_invalid", "authorize:register", "grant_spend:linked", "authorize:buid_unknown", "link:site", "pin_issue:issued"} {
		if actions[want] == 0 {
			t.Errorf("no audit %s in %v", want, actions)
		}
	}
}

func TestConcurrentGrantSpendOnce(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		res, err := e.authorize(e.issue("1"), "")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		linked := 0
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				// Each caller tries a different user: at most one may win.
				_, err := e.svc.CompleteLink(e.ctx, pairing.LinkRequest{Grant: res.Grant.Token, UserID: fmt.Sprint("u", i)})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					linked++
				} else if !errors.Is(err, pairing.ErrGrantUsed) {
					t.Errorf("unexpected %v", err)
				}
			}(i)
		}
		wg.Wait()
		if linked != 1 {
			t.Fatalf("%d callers linked with one grant", linked)
		}
		created := 0
		for _, ev := range e.store.SiteEvents() {
			if ev.Type == pairing.EventLinkCreated {
				created++
			}
		}
		if created != 1 {
			t.Fatalf("%d link.created events", created)
		}
	})
}

func TestConcurrentLinkAndUnlinkOfOneUser(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		var keys []pairing.LeadKey
		for i := 0; i < 20; i++ {
			k := pairing.LeadKey{Channel: "telegram", ExternalID: fmt.Sprint(i)}
			e.svc.TouchLead(e.ctx, k, pairing.Profile{})
			keys = append(keys, k)
		}
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(2)
			go func(k pairing.LeadKey) { defer wg.Done(); e.svc.LinkLead(e.ctx, k, "shared") }(keys[i])
			go func() { defer wg.Done(); e.svc.UnlinkUser(e.ctx, "shared", pairing.ActorSite) }()
		}
		wg.Wait()
		// At most one chat holds the user, and the events tell a consistent story.
		holders := 0
		for _, k := range keys {
			if st, _ := e.svc.Status(e.ctx, k); st.Linked {
				holders++
			}
		}
		created, deleted := 0, 0
		for _, ev := range e.store.SiteEvents() {
			switch ev.Type {
			case pairing.EventLinkCreated:
				created++
			case pairing.EventLinkDeleted:
				deleted++
			}
		}
		if holders > 1 || created-deleted != holders {
			t.Fatalf("holders=%d created=%d deleted=%d", holders, created, deleted)
		}
	})
}

// Every answer leaves one audit row, and the answers that hand out a grant
// write it with their audit row (one statement on PostgreSQL).
func TestAuthorizeAuditsEachAnswer(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		type answer struct {
			res pairing.Result
			err error
		}
		var got []answer
		for _, step := range []struct{ ext, userID string }{{"1", ""}, {"2", "u2"}, {"2", ""}, {"1", "u2"}} {
			res, err := e.authorize(e.issue(step.ext), step.userID)
			got = append(got, answer{res, err})
		}
		want := []pairing.Outcome{pairing.OutcomeRegister, pairing.OutcomeLinked, pairing.OutcomeMatch, pairing.OutcomeConflict}
		for i, a := range got {
			if a.err != nil || a.res.Outcome != want[i] || (a.res.Grant != nil) != (i == 0 || i == 3) {
				t.Fatalf("answer %d: %+v %v, want %s", i, a.res, a.err, want[i])
			}
		}
		evs, err := e.store.AuditEvents(e.ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var authz []pairing.AuditEvent
		for _, ev := range evs {
			if ev.Action == "authorize" {
				authz = append([]pairing.AuditEvent{ev}, authz...) // oldest first
			}
		}
		if len(authz) != len(want) {
			t.Fatalf("%d authorize audit rows, want %d: %+v", len(authz), len(want), authz)
		}
		for i, ev := range authz {
			if ev.Outcome != string(want[i]) || ev.PersonID != got[i].res.PersonID || ev.WebUserID == 0 || !ev.At.Equal(t0) {
				t.Fatalf("audit row %d: %+v for %+v", i, ev, got[i].res)
			}
			if g := got[i].res.Grant; g != nil {
				rec, err := e.store.GrantByHash(e.ctx, pairing.GrantHash(g.Token))
				if err != nil || rec.WebUserID != ev.WebUserID || !rec.ExpiresAt.Equal(g.ExpiresAt) {
					t.Fatalf("grant of answer %d: %+v %v, audit %+v", i, rec, err, ev)
				}
			}
		}
		if authz[3].UserID != "u2" || authz[0].UserID != "" {
			t.Fatalf("user ids in the audit: %+v", authz)
		}
	})
}
