package api

import (
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store/storetest"
)

// benchStore is the store the benchmark runs on: real SQLite in a
// temporary directory, as the default deployment runs.
func benchStore(tb testing.TB) pairing.Store { return storetest.SQLite(tb) }
