package messenger

import (
	"errors"
	"testing"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store/storetest"
)

const targetApp = "263902037430900" // the Page Inbox

func secondary(c *Config) {
	c.Pages[0].Role = RoleSecondary
	c.Pages[0].TargetAppID = targetApp
}

func (e *env) owner(psid string) string {
	o, _ := e.threads.ThreadOwner(e.ctx, keyA(psid))
	return o
}

func TestStandbyIsNeverAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_ = e.threads.SetThreadOwner(e.ctx, keyA("5001"), appA)
	body := fbfake.Body(fbfake.Entry{PageID: pageA, Standby: []map[string]any{
		fbfake.Text("5001", "m.s1", "login"), fbfake.Postback("5001", payloadLink), fbfake.Text("5002", "m.s2", "help"),
	}})
	if rec := e.post(secretA, body); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if len(e.fb.Sent()) != 0 || len(e.fb.ThreadCalls()) != 0 || e.store.Persons() != 0 {
		t.Fatal("a standby event was answered")
	}
	if e.owner("5001") != "" {
		t.Fatal("standby did not correct the belief that this app owns the thread")
	}
	// The window still counts the person's message.
	if !e.hub.inWindow(keyA("5002")) {
		t.Fatal("standby message not noted for the 24-hour window")
	}
}

func TestSecondaryPassesThreadAfterPairing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, secondary)
	e.deliver(fbfake.Text("5001", "m.1", "login"))
	pinOf(t, e.last())
	calls := e.fb.ThreadCalls()
	if len(calls) != 1 || calls[0].Kind != "pass" || calls[0].TargetAppID != targetApp || calls[0].PSID != "5001" || calls[0].PageID != pageA {
		t.Fatalf("thread calls %+v", calls)
	}
	if e.owner("5001") != targetApp {
		t.Fatalf("owner %q", e.owner("5001"))
	}
	// A confirmation question keeps the thread: the answer must come back.
	if _, err := e.svc.LinkLead(e.ctx, keyA("5001"), "user-1"); err != nil {
		t.Fatal(err)
	}
	e.deliver(fbfake.Text("5001", "m.2", "logout"))
	if len(e.fb.ThreadCalls()) != 1 {
		t.Fatal("thread passed in the middle of a confirmation")
	}
	e.deliver(fbfake.QuickReplyEvent("5001", "m.3", "Yes", payloadUnlinkConfirm))
	if len(e.fb.ThreadCalls()) != 2 {
		t.Fatal("thread not passed after unlink")
	}
}

func TestSecondaryRequestsThreadForResend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, secondary)
	pin := e.issue("5001")
	// The Page Inbox took the thread.
	e.deliver(fbfake.TakeThread("5001", targetApp, appA))
	if e.owner("5001") != targetApp {
		t.Fatal("take_thread_control not tracked")
	}
	if err := e.hub.Channel("fb-shop").SendPIN(e.ctx, pin); err != nil {
		t.Fatal(err)
	}
	calls := e.fb.ThreadCalls()
	if len(calls) != 2 || calls[0].Kind != "request" || calls[1].Kind != "pass" {
		t.Fatalf("thread calls %+v", calls)
	}
	// While a human agent keeps it, the send is refused: not talked over.
	e.fb.FailNext(10, 2018300)
	err := e.hub.Channel("fb-shop").SendPIN(e.ctx, pin)
	if !errors.Is(err, ErrThreadControlled) || !IsPermanent(err) {
		t.Fatalf("want thread controlled, got %v", err)
	}
}

func TestPrimaryNeverRequestsOrPasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.1", "login"))
	if len(e.fb.ThreadCalls()) != 0 {
		t.Fatal("primary used handover calls")
	}
}

func TestHandoverEventsTrackOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.PassThread("5001", "3003", appA))
	if e.owner("5001") != "3003" {
		t.Fatalf("pass: %q", e.owner("5001"))
	}
	e.deliver(fbfake.PassThread("5001", appA, "3003"))
	if e.owner("5001") != appA {
		t.Fatal("pass back")
	}
	// Another app asks for a thread this app owns: it gets it.
	e.deliver(fbfake.RequestThread("5001", "4004"))
	calls := e.fb.ThreadCalls()
	if len(calls) != 1 || calls[0].Kind != "pass" || calls[0].TargetAppID != "4004" || e.owner("5001") != "4004" {
		t.Fatalf("request not granted: %+v owner %q", calls, e.owner("5001"))
	}
	// Not ours any more: a second request is not granted by this app.
	e.deliver(fbfake.RequestThread("5001", "5005"))
	if len(e.fb.ThreadCalls()) != 1 {
		t.Fatal("granted a thread it does not own")
	}
	// Handover events are not chat: nothing sent, no lead.
	if len(e.fb.Sent()) != 0 || e.store.Persons() != 0 {
		t.Fatal("handover events answered")
	}
}

// Two instances behind one webhook address share thread owners through
// the database: the one that did not see a handover event still knows
// who owns the thread (with owners in memory it would hand away a thread
// another app holds).
func TestThreadOwnersSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	st := storetest.SQLite(t)
	a, b := newEnvThreads(t, st), newEnvThreads(t, st)
	a.deliver(fbfake.PassThread("5001", "3003", appA))
	b.deliver(fbfake.RequestThread("5001", "4004"))
	if calls := b.fb.ThreadCalls(); len(calls) != 0 {
		t.Fatalf("instance b handed away a thread app 3003 owns: %+v", calls)
	}
	a.deliver(fbfake.PassThread("5001", appA, "3003"))
	b.deliver(fbfake.RequestThread("5001", "4004"))
	calls := b.fb.ThreadCalls()
	if len(calls) != 1 || calls[0].Kind != "pass" || calls[0].TargetAppID != "4004" {
		t.Fatalf("instance b did not grant a thread this app owns: %+v", calls)
	}
	if a.owner("5001") != "4004" {
		t.Fatalf("instance a sees owner %q", a.owner("5001"))
	}
	// An app_roles event one instance received sets the role for both.
	a.deliver(fbfake.AppRoles(map[string][]string{appA: {"secondary_receiver"}}))
	if r := b.hub.role(b.ctx, b.hub.byName["fb-shop"]); r != RoleSecondary {
		t.Fatalf("instance b's role %q after instance a's app_roles event", r)
	}
	// And it outlives the process: a new instance on the same database.
	c := newEnvThreads(t, st)
	if r := c.hub.role(c.ctx, c.hub.byName["fb-shop"]); r != RoleSecondary {
		t.Fatalf("a new instance's role %q", r)
	}
	if r := c.hub.role(c.ctx, c.hub.byName["fb-news"]); r != RolePrimary {
		t.Fatalf("another Page's role %q", r)
	}
}

func TestAppRolesChangeTheRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hub.byName["fb-shop"]
	e.deliver(fbfake.AppRoles(map[string][]string{appA: {"secondary_receiver"}, "9": {"primary_receiver"}}))
	if e.hub.role(e.ctx, p) != RoleSecondary {
		t.Fatal("not secondary")
	}
	e.deliver(fbfake.AppRoles(map[string][]string{"9": {"secondary_receiver"}}))
	if e.hub.role(e.ctx, p) != RoleSecondary {
		t.Fatal("another app's roles changed ours")
	}
	e.deliver(fbfake.AppRoles(map[string][]string{appA: {"primary_receiver"}}))
	if e.hub.role(e.ctx, p) != RolePrimary {
		t.Fatal("not primary")
	}
}

func TestMemThreadState(t *testing.T) {
	t.Parallel()
	m := NewMemThreadState()
	k := pairing.LeadKey{Channel: "c", ExternalID: "1"}
	if o, err := m.ThreadOwner(t.Context(), k); o != "" || err != nil {
		t.Fatal(o, err)
	}
	_ = m.SetThreadOwner(t.Context(), k, "7")
	if o, _ := m.ThreadOwner(t.Context(), k); o != "7" {
		t.Fatal(o)
	}
	_ = m.SetThreadOwner(t.Context(), k, "")
	if o, _ := m.ThreadOwner(t.Context(), k); o != "" {
		t.Fatal(o)
	}
}
