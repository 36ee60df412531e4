package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store/storetest"
)

// Text PostgreSQL cannot keep (a NUL; bytes that are not UTF-8) is bad
// input, answered as pairing.ErrInvalid (a 4xx), not as a database failure
// (a 500), and the transaction writes nothing.
func TestUnstorableTextIsInvalidInput(t *testing.T) {
	st := storetest.Postgres(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"A\x00nn", "B\xffc"} {
		_, err := st.CreateLead(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "t-" + name[:1]}, pairing.Profile{FirstName: name}, now)
		if !errors.Is(err, pairing.ErrInvalid) {
			t.Fatalf("name %q: %v", name, err)
		}
		if _, err := st.LeadByKey(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "t-" + name[:1]}); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("name %q: lead written: %v", name, err)
		}
	}
}
