package pairing_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// TestInboundTokensSealedAtRest: the bearer tokens in a stored platform
// payload (a deep link's /start, the buttons' data, a sign-in token, a
// grant a person pasted) are not in the table, on both engines; the
// handler gets the payload exactly as the platform sent it; another
// instance with the same server secret opens them, a process with another
// secret does not (to it they are unknown tokens).
func TestInboundTokensSealedAtRest(t *testing.T) {
	t.Parallel()
	tokens := []string{
		"pdl_" + strings.Repeat("A1b_", 10) + "x-z",
		"psi_" + strings.Repeat("Zz9-", 10) + "q_Q",
		"pgr_" + strings.Repeat("gR4n", 13) + "tt",
	}
	payload := `{"update_id":7,"message":{"text":"/start ` + tokens[0] + `"},` +
		`"callback_query":{"data":"dl:ok:` + tokens[1] + `","message":{"reply_markup":{"inline_keyboard":[[{"callback_data":"dl:no:` + tokens[1] + `"}]]}}},` +
		`"note":"my grant is ` + tokens[2] + `, and pdl_short stays"}`
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		secret := bytes.Repeat([]byte("k"), 32)
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{SealKey: pairing.InboundSealKey(secret)}, func(string) error { return nil })
		e.accept(t, pairing.InboundEvent{Source: "src", Key: "1", Group: "g", Payload: []byte(payload)})

		stored, err := st.InboundPayloads(context.Background(), "src")
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored %d payloads, %v", len(stored), err)
		}
		for _, tok := range tokens {
			if bytes.Contains(stored[0], []byte(tok)) {
				t.Errorf("token %s… stored in the clear", tok[:8])
			}
		}
		if n := bytes.Count(stored[0], []byte("pzs_")); n != 4 {
			t.Errorf("%d sealed tokens stored, want 4: %s", n, stored[0])
		}
		if !bytes.Contains(stored[0], []byte("pdl_short stays")) {
			t.Errorf("text that is no token changed: %s", stored[0])
		}

		if n, err := e.w.Drain(context.Background()); err != nil || n != 1 {
			t.Fatalf("drained %d, %v", n, err)
		}
		if got := e.handled(); len(got) != 1 || got[0] != payload {
			t.Fatalf("the handler got %q, want the payload as sent", got)
		}
	})
}

// TestInboundSealOpensOnlyWithItsSecret: a second instance on the same
// server secret opens what the first stored; one on another secret sees
// sealed forms, never the tokens.
func TestInboundSealOpensOnlyWithItsSecret(t *testing.T) {
	t.Parallel()
	tok := "pdl_" + strings.Repeat("Xy7_", 11)
	payload := `{"text":"/start ` + tok + `"}`
	for _, c := range []struct {
		name      string
		secret    string
		wantToken bool
	}{{"same secret", "k", true}, {"other secret", "o", false}} {
		t.Run(c.name, func(t *testing.T) {
			st := storetest.SQLite(t)
			first := newInboundEnv(t, st, pairing.InboundWorkerConfig{SealKey: pairing.InboundSealKey(bytes.Repeat([]byte("k"), 32))}, func(string) error { return nil })
			first.accept(t, pairing.InboundEvent{Source: "src", Key: "1", Group: "g", Payload: []byte(payload)})
			second := newInboundEnv(t, st, pairing.InboundWorkerConfig{SealKey: pairing.InboundSealKey(bytes.Repeat([]byte(c.secret), 32))}, func(string) error { return nil })
			if n, err := second.w.Drain(context.Background()); err != nil || n != 1 {
				t.Fatalf("drained %d, %v", n, err)
			}
			got := second.handled()[0]
			if strings.Contains(got, tok) != c.wantToken {
				t.Fatalf("handler saw %q; token opened = %v, want %v", got, strings.Contains(got, tok), c.wantToken)
			}
			if !c.wantToken && !strings.Contains(got, "/start pzs_") {
				t.Fatalf("handler saw %q", got)
			}
		})
	}
}

// TestInboundSealStoredOfEarlierRelease: payloads an earlier release
// stored with tokens in the clear are sealed once at start (those stored
// sealed already are left alone), and their handlers still get the token.
func TestInboundSealStoredOfEarlierRelease(t *testing.T) {
	t.Parallel()
	tok := "pdl_" + strings.Repeat("Ea7-", 11)
	raw := `{"text":"/start ` + tok + `"}`
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newInboundEnv(t, st, pairing.InboundWorkerConfig{SealKey: pairing.InboundSealKey(bytes.Repeat([]byte("k"), 32))}, func(string) error { return nil })
		// The earlier release: straight into the table.
		if _, err := st.EnqueueInbound(ctx, []pairing.InboundEvent{{Source: "src", Key: "old", Group: "g", Payload: []byte(raw)}}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.accept(t, pairing.InboundEvent{Source: "src", Key: "new", Group: "h", Payload: []byte(`{"text":"/start ` + tok + `"}`)})
		before, _ := st.InboundPayloads(ctx, "src")
		n, err := e.w.SealStored(ctx)
		if err != nil || n != 1 {
			t.Fatalf("sealed %d payloads, %v; want 1", n, err)
		}
		after, _ := st.InboundPayloads(ctx, "src")
		if string(after[1]) != string(before[1]) {
			t.Fatal("a payload sealed already was changed")
		}
		for _, p := range after {
			if strings.Contains(string(p), tok) || !strings.Contains(string(p), "/start pzs_") {
				t.Fatalf("stored %s", p)
			}
		}
		if n, err := e.w.SealStored(ctx); err != nil || n != 0 {
			t.Fatalf("second run sealed %d, %v", n, err)
		}
		if n, err := e.w.Drain(ctx); err != nil || n != 2 {
			t.Fatalf("drained %d, %v", n, err)
		}
		for _, got := range e.handled() {
			if got != raw {
				t.Fatalf("handler got %q", got)
			}
		}
	})
}
