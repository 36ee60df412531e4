package messenger

import (
	"errors"
	"testing"

	"github.com/pairingd/pairingd/bots/messenger/fbfake"
	"github.com/pairingd/pairingd/pairing"
)

func idMatching(c *Config) {
	for i := range c.Pages {
		c.Pages[i].IDMatching = true
	}
}

func (e *env) idCalls() int {
	n := 0
	for _, r := range e.fb.Requests() {
		if len(r.Path) > 14 && r.Path[len(r.Path)-14:] == "/ids_for_pages" {
			if !r.HadProof {
				e.t.Fatal("ids_for_pages without appsecret_proof")
			}
			n++
		}
	}
	return n
}

func TestIDMatchingJoinsANewLead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, idMatching)
	// The person wrote to page B first and is linked there.
	if rec := e.post(secretB, fbfake.Delivery(pageB, fbfake.Text("6001", "m.b", "hi"))); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if _, err := e.svc.LinkLead(e.ctx, keyB("6001"), "user-1"); err != nil {
		t.Fatal(err)
	}
	e.fb.SetIDsForPages("5001", map[string]string{pageA: "5001", pageB: "6001", "333": "7001"})
	e.deliver(fbfake.Text("5001", "m.a", "status"))
	a, _ := e.svc.Status(e.ctx, keyA("5001"))
	b, _ := e.svc.Status(e.ctx, keyB("6001"))
	if a.Lead.PersonID != b.Lead.PersonID || !a.Linked || a.UserID != "user-1" {
		t.Fatalf("not joined: %+v / %+v", a, b)
	}
	if e.last().Text != e.text("en", "messenger_status_linked") {
		t.Fatalf("status after join %q", e.last().Text)
	}
	calls := e.idCalls()
	e.deliver(fbfake.Text("5001", "m.a2", "status"))
	if e.idCalls() != calls {
		t.Fatal("ids_for_pages asked again for a known lead")
	}
}

func TestIDMatchingIsOptInAndBestEffort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fb.SetIDsForPages("5001", map[string]string{pageB: "6001"})
	e.deliver(fbfake.Text("5001", "m.1", "hi"))
	if e.idCalls() != 0 {
		t.Fatal("ID matching ran while off")
	}

	e = newEnv(t, idMatching)
	e.fb.FailNextOn(fbfake.EndpointIDsForPages, 2, 0)
	e.deliver(fbfake.Text("5001", "m.1", "hi"))
	if len(e.fb.Sent()) != 1 {
		t.Fatal("an ID matching failure blocked the answer")
	}
	// The other page's PSID has no lead: nothing to join.
	e.fb.SetIDsForPages("5002", map[string]string{pageB: "6002"})
	e.deliver(fbfake.Text("5002", "m.2", "hi"))
	if e.store.Persons() != 2 {
		t.Fatalf("persons %d", e.store.Persons())
	}
}

func TestLinkFacebook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.deliver(fbfake.Text("5001", "m.1", "hi"))
	if rec := e.post(secretB, fbfake.Delivery(pageB, fbfake.Text("6001", "m.2", "hi"))); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	e.fb.SetIDsForPages("777000", map[string]string{pageA: "5001", pageB: "6001", "333": "9"})
	res, err := e.hub.LinkFacebook(e.ctx, "user-1", "777000")
	if err != nil || res.Outcome != pairing.OutcomeLinked || res.UserID != "user-1" {
		t.Fatalf("link: %+v %v", res, err)
	}
	a, _ := e.svc.Status(e.ctx, keyA("5001"))
	b, _ := e.svc.Status(e.ctx, keyB("6001"))
	if a.UserID != "user-1" || b.UserID != "user-1" || a.Lead.PersonID != b.Lead.PersonID {
		t.Fatalf("both pages' leads should be the linked person: %+v %+v", a, b)
	}
	if res, err := e.hub.LinkFacebook(e.ctx, "user-1", "777000"); err != nil || res.Outcome != pairing.OutcomeAlreadyLinked {
		t.Fatalf("again: %+v %v", res, err)
	}
	if _, err := e.hub.LinkFacebook(e.ctx, "user-2", "777000"); !errors.Is(err, pairing.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}

	e.fb.SetIDsForPages("888000", map[string]string{pageA: "5999"}) // never wrote
	for asid, want := range map[string]error{"888000": pairing.ErrNotFound, "999000": pairing.ErrNotFound, "12/../me": pairing.ErrInvalid, "": pairing.ErrInvalid} {
		if _, err := e.hub.LinkFacebook(e.ctx, "user-3", asid); !errors.Is(err, want) {
			t.Errorf("asid %q: %v", asid, err)
		}
	}
	if _, err := e.hub.LinkFacebook(e.ctx, "", "777000"); !errors.Is(err, pairing.ErrInvalid) {
		t.Errorf("empty user: %v", err)
	}
	e.fb.Close()
	if _, err := e.hub.LinkFacebook(e.ctx, "user-3", "777000"); !errors.Is(err, pairing.ErrChannelFailed) {
		t.Fatalf("graph down: %v", err)
	}
}
