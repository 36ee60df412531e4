package store_test

import (
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// Messenger thread owners are kept in the database (so every instance, and
// an instance after a restart, reads the same), per channel and PSID.
func TestThreadOwners(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		a := pairing.LeadKey{Channel: "fb", ExternalID: "111"}
		b := pairing.LeadKey{Channel: "fb2", ExternalID: "111"}
		owner := func(k pairing.LeadKey) string {
			t.Helper()
			o, err := st.ThreadOwner(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		if o := owner(a); o != "" {
			t.Fatalf("unknown thread: owner %q", o)
		}
		for _, app := range []string{"263902037430900", "1234567890"} {
			if err := st.SetThreadOwner(ctx, a, app); err != nil {
				t.Fatal(err)
			}
			if o := owner(a); o != app {
				t.Fatalf("owner %q, want %q", o, app)
			}
		}
		if o := owner(b); o != "" {
			t.Fatalf("another channel's thread: owner %q", o)
		}
		if err := st.SetThreadOwner(ctx, a, ""); err != nil {
			t.Fatal(err)
		}
		if o := owner(a); o != "" {
			t.Fatalf("forgotten owner still %q", o)
		}
		// Forgetting an unknown thread is not an error.
		if err := st.SetThreadOwner(ctx, b, ""); err != nil {
			t.Fatal(err)
		}
		// Page roles from app_roles events.
		if r, err := st.PageRole(ctx, "fb"); r != "" || err != nil {
			t.Fatalf("no event yet: role %q, %v", r, err)
		}
		for _, role := range []string{"secondary", "primary"} {
			if err := st.SetPageRole(ctx, "fb", role); err != nil {
				t.Fatal(err)
			}
			if r, err := st.PageRole(ctx, "fb"); r != role || err != nil {
				t.Fatalf("role %q, %v; want %q", r, err, role)
			}
		}
		if r, _ := st.PageRole(ctx, "fb2"); r != "" {
			t.Fatalf("another Page's role %q", r)
		}
	})
}
