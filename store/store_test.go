package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

func newLead(t *testing.T, st *store.Store, ext string) pairing.Lead {
	t.Helper()
	l, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: ext}, pairing.Profile{FirstName: "Ann", Locale: "ru"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func webUserOf(t *testing.T, st *store.Store, l pairing.Lead) pairing.WebUser {
	t.Helper()
	w, err := st.WebUserByPerson(ctx, l.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func cred(lead int64) pairing.Credential {
	return pairing.Credential{BUIDHash: []byte("buid-hash"), PINHash: []byte("pin-hash"), IssuedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), LeadID: lead}
}

// parallel runs fn n times at once and returns how many returned true.
func parallel(t *testing.T, n int, fn func(i int) (bool, error)) int {
	t.Helper()
	var wg sync.WaitGroup
	var wins atomic.Int32
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := fn(i)
			if err != nil {
				errs <- err
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return int(wins.Load())
}

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		for range 2 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		v, err := st.SchemaVersion(ctx)
		if err != nil || v < 1 {
			t.Fatalf("schema version %d, %v", v, err)
		}
	})
}

func TestLeadsAndProfiles(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "42")
		if l.ID == 0 || l.PersonID == 0 || l.Profile.FirstName != "Ann" || !l.CreatedAt.Equal(t0) {
			t.Fatalf("created %+v", l)
		}
		again, err := st.CreateLead(ctx, l.Key(), pairing.Profile{FirstName: "Other"}, t0)
		if err != nil || again.ID != l.ID || again.Profile.FirstName != "Ann" {
			t.Fatalf("second create: %+v, %v", again, err)
		}
		if err := st.UpdateLeadProfile(ctx, l.ID, pairing.Profile{FirstName: "Анна", Username: "ann"}, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := st.LeadByKey(ctx, l.Key())
		if err != nil || got.Profile.FirstName != "Анна" || got.Profile.Username != "ann" || !got.UpdatedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("after update %+v, %v", got, err)
		}
		changed, err := st.SetLeadBlocked(ctx, l.ID, true, t0)
		if err != nil || !changed {
			t.Fatalf("block: %v %v", changed, err)
		}
		changed, err = st.SetLeadBlocked(ctx, l.ID, true, t0)
		if err != nil || changed {
			t.Fatalf("block twice: %v %v", changed, err)
		}
		if got, _ := st.LeadByID(ctx, l.ID); !got.Blocked {
			t.Fatal("not blocked")
		}
		if _, err := st.LeadByID(ctx, 999999); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing lead: %v", err)
		}
		if _, err := st.SetLeadBlocked(ctx, 999999, true, t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("block missing lead: %v", err)
		}
		if err := st.UpdateLeadProfile(ctx, 999999, pairing.Profile{}, t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("update missing lead: %v", err)
		}
		w := webUserOf(t, st, l)
		if w.LeadID != l.ID || w.Linked() || w.FailedAttempts != 0 {
			t.Fatalf("web user %+v", w)
		}
	})
}

func TestCreateLeadRaceMakesOnePerson(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ids := make([]int64, 20)
		parallel(t, 20, func(i int) (bool, error) {
			l, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "race"}, pairing.Profile{}, t0)
			ids[i] = l.ID
			return false, err
		})
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("different leads %v", ids)
			}
		}
		if n, err := st.Persons(ctx); err != nil || n != 1 {
			t.Fatalf("persons %d, %v", n, err)
		}
	})
}

func TestCredentialIsSpentOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "1")
		w := webUserOf(t, st, l)
		if err := st.SetCredential(ctx, w.ID, cred(l.ID), t0); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Minute)
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), []byte("wrong"), now, pairing.KeyGuard{}); ok {
			t.Fatal("wrong PIN spent")
		}
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("other-buid"), []byte("pin-hash"), now, pairing.KeyGuard{}); ok {
			t.Fatal("wrong BUID spent")
		}
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), []byte("pin-hash"), t0.Add(10*time.Minute), pairing.KeyGuard{}); ok {
			t.Fatal("expired PIN spent")
		}
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), nil, now, pairing.KeyGuard{}); ok {
			t.Fatal("magic link spent while magic links were off")
		}
		wins := parallel(t, 200, func(int) (bool, error) {
			_, ok, err := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), []byte("pin-hash"), now, pairing.KeyGuard{})
			return ok, err
		})
		if wins != 1 {
			t.Fatalf("%d requests spent the PIN, want 1", wins)
		}
		got, _ := st.WebUserByID(ctx, w.ID)
		if !got.PINUsedAt.Equal(now) {
			t.Fatalf("used at %v", got.PINUsedAt)
		}
		// A new credential can be spent again.
		c := cred(l.ID)
		c.PINHash, c.MagicExpiresAt = []byte("pin-2"), t0.Add(time.Hour)
		if err := st.SetCredential(ctx, w.ID, c, now); err != nil {
			t.Fatal(err)
		}
		spent, ok, err := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), nil, now, pairing.KeyGuard{})
		if !ok || err != nil {
			t.Fatalf("magic link: %v %v", ok, err)
		}
		// The spend hands back the row as it left it and the PIN's lead.
		if spent.ID != w.ID || !spent.PINUsedAt.Equal(now) || spent.Lead.ID != l.ID || spent.Lead.ExternalID != "1" || spent.Lead.PersonID != l.PersonID {
			t.Fatalf("spent %+v", spent)
		}
		if err := st.SetCredential(ctx, 999999, c, now); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
	})
}

// wrongPIN counts one wrong PIN the way the service does (pairing's
// pinLock: 5 wrong PINs lock for 15 minutes): decide from the row as read,
// write with the compare-and-set, decide again after a lost race. It
// reports whether the guess was counted.
func wrongPIN(st *store.Store, id int64, now time.Time) (bool, error) {
	w, err := st.WebUserByID(ctx, id)
	if err != nil {
		return false, err
	}
	cur := pairing.PINAttempts{Failed: w.FailedAttempts, LockedUntil: w.LockedUntil}
	for {
		if cur.LockedUntil.After(now) {
			return false, nil
		}
		next := pairing.PINAttempts{Failed: cur.Failed + 1}
		if next.Failed >= 5 {
			next.LockedUntil = now.Add(15 * time.Minute)
		}
		stored, swapped, err := st.SwapPINAttempts(ctx, id, cur, next, now)
		if err != nil || swapped {
			return swapped, err
		}
		cur = stored
	}
}

func TestWrongPINsCountedExactlyOnceEach(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "1")
		w := webUserOf(t, st, l)
		if err := st.SetCredential(ctx, w.ID, cred(l.ID), t0); err != nil {
			t.Fatal(err)
		}
		// Of many swaps from one state, exactly one changes the row; the
		// others get the state it wrote.
		zero, one := pairing.PINAttempts{}, pairing.PINAttempts{Failed: 1}
		won := parallel(t, 100, func(int) (bool, error) {
			stored, swapped, err := st.SwapPINAttempts(ctx, w.ID, zero, one, t0)
			if err == nil && !swapped && stored != one {
				err = fmt.Errorf("lost the swap to %+v, want %+v", stored, one)
			}
			return swapped, err
		})
		if won != 1 {
			t.Fatalf("%d swaps from one state won, want exactly 1", won)
		}
		if _, _, err := st.SwapPINAttempts(ctx, w.ID, one, zero, t0); err != nil {
			t.Fatal(err)
		}
		counted := parallel(t, 500, func(int) (bool, error) { return wrongPIN(st, w.ID, t0) })
		if counted != 5 {
			t.Fatalf("%d guesses counted, want exactly 5", counted)
		}
		got, _ := st.WebUserByID(ctx, w.ID)
		if got.FailedAttempts != 5 || !got.LockedUntil.Equal(t0.Add(15*time.Minute)) {
			t.Fatalf("attempts %d locked until %v", got.FailedAttempts, got.LockedUntil)
		}
		// While locked, even the right PIN is not spent.
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), []byte("pin-hash"), t0.Add(time.Minute), pairing.KeyGuard{}); ok {
			t.Fatal("spent while locked")
		}
		// After the lock the service starts the count again at 1.
		locked := pairing.PINAttempts{Failed: 5, LockedUntil: t0.Add(15 * time.Minute)}
		again := pairing.PINAttempts{Failed: 1}
		if stored, ok, err := st.SwapPINAttempts(ctx, w.ID, locked, again, t0.Add(16*time.Minute)); err != nil || !ok || stored != again {
			t.Fatalf("after lock: %+v %v %v", stored, ok, err)
		}
		// A right PIN resets the counter.
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), []byte("pin-hash"), t0.Add(17*time.Minute), pairing.KeyGuard{}); ok {
			t.Fatal("expired PIN spent")
		}
		c2 := cred(l.ID)
		c2.ExpiresAt = t0.Add(time.Hour)
		_ = st.SetCredential(ctx, w.ID, c2, t0.Add(17*time.Minute))
		if _, ok, _ := st.SpendCredential(ctx, w.ID, []byte("buid-hash"), []byte("pin-hash"), t0.Add(17*time.Minute), pairing.KeyGuard{}); !ok {
			t.Fatal("right PIN refused")
		}
		if got, _ := st.WebUserByID(ctx, w.ID); got.FailedAttempts != 0 || !got.LockedUntil.IsZero() {
			t.Fatalf("not reset: %+v", got)
		}
		if _, _, err := st.SwapPINAttempts(ctx, 999999, zero, one, t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
	})
}

func TestClaimIssueOncePerInterval(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "1")
		w := webUserOf(t, st, l)
		wins := parallel(t, 50, func(int) (bool, error) { return st.ClaimIssue(ctx, w.ID, t0, time.Minute) })
		if wins != 1 {
			t.Fatalf("%d claims, want 1", wins)
		}
		if ok, _ := st.ClaimIssue(ctx, w.ID, t0.Add(59*time.Second), time.Minute); ok {
			t.Fatal("claimed within the interval")
		}
		if ok, _ := st.ClaimIssue(ctx, w.ID, t0.Add(time.Minute), time.Minute); !ok {
			t.Fatal("not claimed after the interval")
		}
		if _, err := st.ClaimIssue(ctx, 999999, t0, time.Minute); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
	})
}

func TestLinksAreUniqueUnderRaces(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		var rows []pairing.WebUser
		for i := range 10 {
			rows = append(rows, webUserOf(t, st, newLead(t, st, fmt.Sprint(i))))
		}
		// Ten persons race for one site user: one wins, the rest get ErrRaced.
		wins := parallel(t, 10, func(i int) (bool, error) {
			err := st.SetLink(ctx, rows[i].ID, "site-1", t0)
			if errors.Is(err, pairing.ErrRaced) {
				return false, nil
			}
			return err == nil, err
		})
		if wins != 1 {
			t.Fatalf("%d links to one user", wins)
		}
		// One person, ten site users: one wins.
		wins = parallel(t, 10, func(i int) (bool, error) {
			err := st.SetLink(ctx, rows[9].ID, fmt.Sprint("other-", i), t0)
			if errors.Is(err, pairing.ErrRaced) {
				return false, nil
			}
			return err == nil, err
		})
		if rows[9].Linked() || wins > 1 {
			t.Fatalf("%d links for one person", wins)
		}
		w, err := st.WebUserByUserID(ctx, "site-1")
		if err != nil || w.UserID != "site-1" || w.LinkedAt.IsZero() {
			t.Fatalf("lookup %+v %v", w, err)
		}
		links, err := st.ListLinks(ctx, 0, 100)
		if err != nil || len(links) < 1 || len(links) > 2 {
			t.Fatalf("list %d %v", len(links), err)
		}
		page, _ := st.ListLinks(ctx, links[0].ID, 100)
		if len(page) != len(links)-1 {
			t.Fatalf("after-id paging: %d", len(page))
		}
		if err := st.ClearLink(ctx, w.ID, "someone-else", t0); !errors.Is(err, pairing.ErrRaced) {
			t.Fatalf("clearing another user's link: %v", err)
		}
		// Two unlinks of one link at once: exactly one clears it.
		if won := parallel(t, 10, func(int) (bool, error) {
			err := st.ClearLink(ctx, w.ID, "site-1", t0)
			if errors.Is(err, pairing.ErrRaced) {
				return false, nil
			}
			return err == nil, err
		}); won != 1 {
			t.Fatalf("%d unlinks cleared one link", won)
		}
		if err := st.ClearLink(ctx, 999999, "site-1", t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
		if _, err := st.WebUserByUserID(ctx, "site-1"); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("after clear: %v", err)
		}
		if _, err := st.WebUserByUserID(ctx, ""); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("empty user id: %v", err)
		}
		if err := st.SetLink(ctx, 999999, "x", t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
	})
}

func TestTxRollsBackEverything(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "1")
		w := webUserOf(t, st, l)
		other := webUserOf(t, st, newLead(t, st, "2"))
		if err := st.SetLink(ctx, other.ID, "taken", t0); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err := st.Tx(ctx, func(r pairing.Repo) error {
			if err := r.SetLink(ctx, w.ID, "u1", t0); err != nil {
				return err
			}
			if err := r.AddSiteEvent(ctx, pairing.SiteEvent{Type: pairing.EventLinkCreated, UserID: "u1", CreatedAt: t0}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("tx: %v", err)
		}
		if got, _ := st.WebUserByID(ctx, w.ID); got.Linked() {
			t.Fatal("link survived the rollback")
		}
		if evs, _ := st.SiteEventsAfter(ctx, 0, 10); len(evs) != 0 {
			t.Fatalf("events survived: %v", evs)
		}
		// A unique violation inside a transaction is ErrRaced and the
		// transaction can go on (savepoint), then commit.
		err = st.Tx(ctx, func(r pairing.Repo) error {
			if err := r.SetLink(ctx, w.ID, "taken", t0); !errors.Is(err, pairing.ErrRaced) {
				return fmt.Errorf("want ErrRaced, got %v", err)
			}
			if err := r.SetLink(ctx, w.ID, "u2", t0); err != nil {
				return err
			}
			return r.AddSiteEvent(ctx, pairing.SiteEvent{Type: pairing.EventLinkCreated, UserID: "u2", Payload: []byte(`{"a":1}`), CreatedAt: t0})
		})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.SiteEventsAfter(ctx, 0, 10)
		if err != nil || len(evs) != 1 || evs[0].UserID != "u2" || string(evs[0].Payload) != `{"a":1}` || !evs[0].CreatedAt.Equal(t0) {
			t.Fatalf("events %+v %v", evs, err)
		}
	})
}

func TestMergePersonMovesLeadsAndDropsTheOldRow(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		a := newLead(t, st, "a")
		b, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "fb-shop", ExternalID: "psid"}, pairing.Profile{}, t0)
		if err != nil {
			t.Fatal(err)
		}
		wb := webUserOf(t, st, b)
		if err := st.CreateGrant(ctx, pairing.GrantRecord{Hash: []byte("g"), Kind: pairing.GrantRegister, WebUserID: wb.ID, LeadID: b.ID, ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}, pairing.AuditEvent{At: t0, Action: "authorize"}); err != nil {
			t.Fatal(err)
		}
		if err := st.MergePerson(ctx, b.PersonID, a.PersonID, t0); err != nil {
			t.Fatal(err)
		}
		leads, err := st.LeadsOfPerson(ctx, a.PersonID)
		if err != nil || len(leads) != 2 || leads[0].ID != a.ID || leads[1].ID != b.ID {
			t.Fatalf("leads %+v %v", leads, err)
		}
		if _, err := st.WebUserByID(ctx, wb.ID); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("old row: %v", err)
		}
		if _, err := st.GrantByHash(ctx, []byte("g")); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("old row's grant: %v", err)
		}
		if n, _ := st.Persons(ctx); n != 1 {
			t.Fatalf("persons %d", n)
		}
	})
}

func TestLinkOfUserReadsTheRowAndEveryLead(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		a := newLead(t, st, "a")
		b, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "fb-shop", ExternalID: "psid"}, pairing.Profile{FirstName: "Bo"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.MergePerson(ctx, b.PersonID, a.PersonID, t0); err != nil {
			t.Fatal(err)
		}
		wa := webUserOf(t, st, a)
		if _, _, err := st.LinkOfUser(ctx, "site-1"); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("not linked yet: %v", err)
		}
		if err := st.SetLink(ctx, wa.ID, "site-1", t0); err != nil {
			t.Fatal(err)
		}
		wu, leads, err := st.LinkOfUser(ctx, "site-1")
		if err != nil || wu.ID != wa.ID || wu.UserID != "site-1" || wu.PersonID != a.PersonID {
			t.Fatalf("row %+v %v", wu, err)
		}
		if len(leads) != 2 || leads[0].ID != a.ID || leads[1].ID != b.ID || leads[1].Profile.FirstName != "Bo" {
			t.Fatalf("leads %+v", leads)
		}
		if _, _, err := st.LinkOfUser(ctx, ""); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("empty user id: %v", err)
		}
	})
}

func TestGrantSpentOnce(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		l := newLead(t, st, "1")
		w := webUserOf(t, st, l)
		g := pairing.GrantRecord{Hash: []byte("grant"), Kind: pairing.GrantConflict, WebUserID: w.ID, LeadID: l.ID, UserID: "u", ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}
		ev := pairing.AuditEvent{At: t0, Action: "authorize", Outcome: "conflict", KeyID: 3, WebUserID: w.ID, PersonID: l.PersonID, UserID: "u"}
		if err := st.CreateGrant(ctx, g, ev); err != nil {
			t.Fatal(err)
		}
		got, err := st.GrantByHash(ctx, []byte("grant"))
		if err != nil || got.ID == 0 || got.Kind != pairing.GrantConflict || got.UserID != "u" || !got.ExpiresAt.Equal(g.ExpiresAt) {
			t.Fatalf("grant %+v %v", got, err)
		}
		// The answer's audit row is written with the grant, and neither
		// without the other: a second grant with the same hash fails whole.
		evs, err := st.AuditEvents(ctx, 10)
		if err != nil || len(evs) != 1 || evs[0] != ev {
			t.Fatalf("audit with the grant: %+v %v", evs, err)
		}
		err = st.Tx(ctx, func(r pairing.Repo) error {
			return r.CreateGrant(ctx, g, pairing.AuditEvent{At: t0, Action: "authorize", Outcome: "register"})
		})
		if err == nil {
			t.Fatal("a second grant with the same hash was stored")
		}
		if evs, err := st.AuditEvents(ctx, 10); err != nil || len(evs) != 1 {
			t.Fatalf("a failed grant left its audit row: %+v %v", evs, err)
		}
		if ok, _ := st.SpendGrant(ctx, got.ID, t0.Add(10*time.Minute)); ok {
			t.Fatal("expired grant spent")
		}
		wins := parallel(t, 100, func(int) (bool, error) { return st.SpendGrant(ctx, got.ID, t0.Add(time.Minute)) })
		if wins != 1 {
			t.Fatalf("grant spent %d times", wins)
		}
	})
}

func TestAPIKeysAndFailureBudget(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		k, err := st.CreateAPIKey(ctx, pairing.APIKey{Name: "shop", Prefix: "pdk_abc", Hash: []byte("h1"), CreatedAt: t0})
		if err != nil || k.ID == 0 {
			t.Fatal(k, err)
		}
		got, err := st.APIKeyByHash(ctx, []byte("h1"))
		if err != nil || got.Name != "shop" || !bytes.Equal(got.Hash, []byte("h1")) {
			t.Fatalf("%+v %v", got, err)
		}
		n := parallel(t, 100, func(int) (bool, error) {
			_, err := st.AddKeyFailure(ctx, k.ID, t0, time.Minute)
			return true, err
		})
		if f, _ := st.KeyFailures(ctx, k.ID, t0.Add(30*time.Second), time.Minute); f != n {
			t.Fatalf("failures %d, want %d", f, n)
		}
		if f, _ := st.KeyFailures(ctx, k.ID, t0.Add(time.Minute), time.Minute); f != 0 {
			t.Fatalf("window passed, failures %d", f)
		}
		if f, _ := st.AddKeyFailure(ctx, k.ID, t0.Add(time.Minute), time.Minute); f != 1 {
			t.Fatalf("new window starts at %d", f)
		}
		// Charges: 100 concurrent ones against a budget of 10 in a fresh
		// window, each in a transaction that holds the key's row until it
		// commits: exactly 10 count.
		t1 := t0.Add(5 * time.Minute)
		won := parallel(t, 100, func(int) (bool, error) {
			var ok bool
			err := st.Tx(ctx, func(r pairing.Repo) error {
				var err error
				ok, err = r.ChargeKeyFailure(ctx, k.ID, t1, time.Minute, 10)
				return err
			})
			return ok, err
		})
		if won != 10 {
			t.Fatalf("%d charges counted, budget 10", won)
		}
		if f, _ := st.KeyFailures(ctx, k.ID, t1, time.Minute); f != 10 {
			t.Fatalf("failures %d, want 10", f)
		}
		if ok, _ := st.ChargeKeyFailure(ctx, k.ID, t1, time.Minute, 10); ok {
			t.Fatal("charged past the budget")
		}
		if ok, _ := st.ChargeKeyFailure(ctx, k.ID, t1, time.Minute, 11); !ok {
			t.Fatal("a bigger budget must have room")
		}
		// A charge rolled back with its transaction counts nothing.
		t2 := t1.Add(time.Minute)
		rolledBack := errors.New("roll back")
		if err := st.Tx(ctx, func(r pairing.Repo) error {
			if ok, err := r.ChargeKeyFailure(ctx, k.ID, t2, time.Minute, 10); !ok || err != nil {
				t.Errorf("charge in a new window: %v %v", ok, err)
			}
			return rolledBack
		}); !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		if f, _ := st.KeyFailures(ctx, k.ID, t2, time.Minute); f != 0 {
			t.Fatalf("rolled-back charge counted: %d", f)
		}
		if ok, _ := st.ChargeKeyFailure(ctx, k.ID, t2, time.Minute, 10); !ok {
			t.Fatal("a new window must have room")
		}
		if f, _ := st.KeyFailures(ctx, k.ID, t2, time.Minute); f != 1 {
			t.Fatalf("new window starts at %d", f)
		}
		if err := st.RevokeAPIKey(ctx, "shop", t0); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeAPIKey(ctx, "shop", t0); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("revoke twice: %v", err)
		}
		k2, _ := st.CreateAPIKey(ctx, pairing.APIKey{Name: "b", Prefix: "pdk_b", Hash: []byte("h2"), CreatedAt: t0})
		if err := st.RevokeAPIKey(ctx, fmt.Sprint(k2.ID), t0); err != nil {
			t.Fatal(err)
		}
		keys, err := st.ListAPIKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].RevokedAt.IsZero() || keys[1].RevokedAt.IsZero() {
			t.Fatalf("keys %+v %v", keys, err)
		}
	})
}

func TestDedupeAndSecretAndAudit(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		// The same platform event stored by 20 requests at once is stored
		// once: the inbound queue's unique (source, key) is the dedupe.
		ev := pairing.InboundEvent{Source: "telegram:bot", Key: "17", Group: "chat:1", Payload: []byte(`{}`)}
		wins := parallel(t, 20, func(int) (bool, error) {
			n, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{ev}, time.Now())
			return n == 1, err
		})
		if wins != 1 {
			t.Fatalf("stored %d times", wins)
		}

		// Instances starting together with the secret of an earlier release
		// in the database and the same secret configured all start, and the
		// stored copy is gone.
		legacy := []byte("secret-of-an-earlier-release-xxxxxxxxxx")
		if err := store.PutLegacyServerSecret(st, legacy); err != nil {
			t.Fatal(err)
		}
		secrets := make([][]byte, 10)
		parallel(t, 10, func(i int) (bool, error) {
			s, err := st.ServerSecret(ctx, legacy, "", store.Config{Driver: st.Driver()})
			secrets[i] = s
			return false, err
		})
		for _, s := range secrets {
			if !bytes.Equal(s, legacy) {
				t.Fatalf("instances disagree on the secret: %q", secrets)
			}
		}
		if _, err := st.LegacyServerSecret(ctx); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("the stored secret is still there: %v", err)
		}

		if err := st.AddAudit(ctx, pairing.AuditEvent{At: t0, Action: "authorize", Outcome: "match", KeyID: 1, UserID: "u"}); err != nil {
			t.Fatal(err)
		}
		evs, err := st.AuditEvents(ctx, 10)
		if err != nil || len(evs) != 1 || evs[0].Outcome != "match" || !evs[0].At.Equal(t0) {
			t.Fatalf("audit %+v %v", evs, err)
		}
	})
}

func TestClosedDatabaseIsUnavailable(t *testing.T) {
	st := storetest.SQLite(t)
	st.Close()
	if err := st.Ping(ctx); !errors.Is(err, pairing.ErrUnavailable) {
		t.Fatalf("ping: %v", err)
	}
	if _, err := st.LeadByID(ctx, 1); !errors.Is(err, pairing.ErrUnavailable) {
		t.Fatalf("read: %v", err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	if _, err := store.Open(ctx, store.Config{Driver: "mysql", DSN: "x"}, nil); err == nil {
		t.Fatal("unknown driver accepted")
	}
	if _, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: t.TempDir() + "/missing/dir/x.db"}, nil); !errors.Is(err, pairing.ErrUnavailable) {
		t.Fatalf("unopenable file: %v", err)
	}
	if _, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, nil); !errors.Is(err, pairing.ErrUnavailable) {
		t.Fatalf("unreachable postgres: %v", err)
	}
}

// The single SQLite writer connection is shared by transactions and plain
// writes running the same statements at once; this must never deadlock
// (GORM's prepared-statement cache did: go-gorm/gorm#7465).
func TestWriterNoDeadlockUnderMixedLoad(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		lead, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "dl"}, pairing.Profile{}, t0)
		if err != nil {
			t.Fatal(err)
		}
		w, err := st.WebUserByPerson(ctx, lead.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 40 {
						from := pairing.PINAttempts{Failed: g*40 + i}
						to := pairing.PINAttempts{Failed: g*40 + i + 1}
						if (g+i)%2 == 0 {
							_, _, _ = st.SwapPINAttempts(ctx, w.ID, from, to, t0)
							continue
						}
						_ = st.Tx(ctx, func(r pairing.Repo) error {
							_, _, err := r.SwapPINAttempts(ctx, w.ID, from, to, t0)
							return err
						})
					}
				}()
			}
			wg.Wait()
		}()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			t.Fatal("writes deadlocked")
		}
	})
}
