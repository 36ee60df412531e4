package pairing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
)

// POST /v1/links/oidc's rules: only a subject that signed in within the
// window links; a taken side is a conflict as in authorize, replace moves
// the link; bad input changes nothing.
func TestLinkSubject(t *testing.T) {
	engines(t, func(t *testing.T, newEnv newEnvFunc) {
		e := newEnv(t)
		si := e.svc.EnableSignIn(e.store, 0, map[string]string{"telegram": "telegram"})
		const window = 10 * time.Minute
		n := 0
		// signedIn makes a person with a Telegram lead who signs in now.
		signedIn := func(chat string) (int64, string) {
			t.Helper()
			lead, err := e.store.CreateLead(e.ctx, pairing.LeadKey{Channel: "telegram", ExternalID: chat}, pairing.Profile{FirstName: "Ann"}, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			n++
			id := "req-" + chat
			if err := e.store.CreateAuthRequest(e.ctx, store.AuthRequestRecord{ID: id, ClientID: "c", Request: []byte("{}"),
				ExpiresAt: e.clock.Now().Add(time.Hour), CreatedAt: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if err := si.Resume(e.ctx, id, pairing.SignInAuth{PersonID: lead.PersonID, AMR: []string{"chat_confirm"}, AuthTime: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			sub, err := si.Subject(e.ctx, lead.PersonID)
			if err != nil {
				t.Fatal(err)
			}
			return lead.PersonID, sub
		}
		link := func(sub, user string, replace bool) (pairing.Result, error) {
			return si.LinkSubject(e.ctx, pairing.SubjectLinkRequest{Subject: sub, UserID: user, Replace: replace}, window)
		}

		annID, ann := signedIn("100")
		for _, bad := range []struct{ sub, user string }{{"", "u1"}, {"nobody", "u1"}, {string(make([]byte, 200)), "u1"}} {
			if _, err := link(bad.sub, bad.user, false); !errors.Is(err, pairing.ErrTokenUnknown) {
				t.Errorf("sub %.10q: %v, want token_unknown", bad.sub, err)
			}
		}
		if _, err := link(ann, "", false); err == nil || errors.Is(err, pairing.ErrTokenUnknown) {
			t.Errorf("empty user_id: %v, want a validation error", err)
		}
		if res, err := link(ann, "u1", false); err != nil || res.Outcome != pairing.OutcomeLinked || res.PersonID != annID {
			t.Fatalf("link: %+v, %v", res, err)
		}
		if res, err := link(ann, "u1", false); err != nil || res.Outcome != pairing.OutcomeAlreadyLinked {
			t.Fatalf("link again: %+v, %v", res, err)
		}

		// Another person on the same messenger: u1 is taken.
		bobID, bob := signedIn("200")
		var ce *pairing.ConflictError
		if _, err := link(bob, "u1", false); !errors.As(err, &ce) || ce.Conflict.Kind != pairing.ConflictUserLinkedElsewhere {
			t.Fatalf("taken user: %v", err)
		}
		if res, err := link(bob, "u1", true); err != nil || res.Outcome != pairing.OutcomeLinked || res.PersonID != bobID {
			t.Fatalf("replace: %+v, %v", res, err)
		}
		if res, err := link(ann, "u2", false); err != nil || res.Outcome != pairing.OutcomeLinked {
			t.Fatalf("ann after the link moved: %+v, %v", res, err)
		}

		// Past the window the sign-in no longer links.
		_, carol := signedIn("300")
		e.clock.Advance(window + time.Second)
		if _, err := link(carol, "u3", false); !errors.Is(err, pairing.ErrTokenExpired) {
			t.Fatalf("after the window: %v", err)
		}
	})
}
