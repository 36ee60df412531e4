//go:build unix

package store_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// TestServerSecretFileOnSQLite: with nothing configured the secret is made
// on first start in a 0600 file beside the database (under umask 000 too),
// read back by every later start, and never written to the database.
func TestServerSecretFileOnSQLite(t *testing.T) {
	withUmask(t, 0)
	cfg := store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "pairingd.db")}
	st := openSQLite(t, cfg.DSN)
	defer st.Close()
	first, err := st.ServerSecret(ctx, nil, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := cfg.DSN + ".secret"
	wantMode(t, file, 0o600)
	if len(first) != 32 {
		t.Fatalf("secret of %d bytes", len(first))
	}
	raw, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(raw), "base64:") {
		t.Fatalf("file %q %v", raw, err)
	}
	again, err := st.ServerSecret(ctx, nil, "", cfg)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second start: %v, same=%v", err, bytes.Equal(again, first))
	}
	if _, err := st.LegacyServerSecret(ctx); !errors.Is(err, pairing.ErrNotFound) {
		t.Fatalf("a secret in the settings table: %v", err)
	}
	// The configured secret wins, and a named file is used as it is.
	if got, err := st.ServerSecret(ctx, []byte(strings.Repeat("k", 32)), "", cfg); err != nil || string(got) != strings.Repeat("k", 32) {
		t.Fatalf("configured: %q %v", got, err)
	}
	named := filepath.Join(t.TempDir(), "named.key")
	if err := os.WriteFile(named, []byte(strings.Repeat("n", 40)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ServerSecret(ctx, nil, named, cfg); err != nil || string(got) != strings.Repeat("n", 40) {
		t.Fatalf("named file: %q %v", got, err)
	}
	wantMode(t, named, 0o600) // narrowed when read
	short := filepath.Join(t.TempDir(), "short.key")
	_ = os.WriteFile(short, []byte("too short"), 0o600)
	if _, err := st.ServerSecret(ctx, nil, short, cfg); !errors.Is(err, store.ErrSecretConfig) {
		t.Fatalf("short secret file: %v", err)
	}
}

// TestServerSecretUpgradeKeepsLivePIN: a database of an earlier release,
// with the secret in settings and a live PIN, is opened by this release:
// the secret moves to its file (0600), the row is gone (and its bytes are
// in neither the database file nor its WAL), and the PIN still authorizes.
func TestServerSecretUpgradeKeepsLivePIN(t *testing.T) {
	cfg := store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "pairingd.db")}
	st := openSQLite(t, cfg.DSN)
	legacy := make([]byte, 32)
	_, _ = rand.Read(legacy)
	if err := store.PutLegacyServerSecret(st, legacy); err != nil {
		t.Fatal(err)
	}
	before, err := pairing.New(st, pairing.Config{Secret: legacy})
	if err != nil {
		t.Fatal(err)
	}
	pin, err := before.IssuePIN(ctx, pairing.LeadKey{Channel: "telegram", ExternalID: "42"}, pairing.Profile{FirstName: "Ann"}, pairing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	st = openSQLite(t, cfg.DSN) // the upgraded start
	defer st.Close()
	secret, err := st.ServerSecret(ctx, nil, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, legacy) {
		t.Fatal("the moved secret is not the stored one")
	}
	wantMode(t, cfg.DSN+".secret", 0o600)
	if _, err := st.LegacyServerSecret(ctx); !errors.Is(err, pairing.ErrNotFound) {
		t.Fatalf("the secret is still in settings: %v", err)
	}
	for _, f := range []string{cfg.DSN, cfg.DSN + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, legacy) {
			t.Errorf("%s still holds the secret's bytes", filepath.Base(f))
		}
	}
	after, err := pairing.New(st, pairing.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	res, err := after.Authorize(ctx, pairing.AuthorizeRequest{BUID: pin.BUID, PIN: pin.PIN})
	if err != nil || res.Outcome != pairing.OutcomeRegister {
		t.Fatalf("the PIN issued before the upgrade: %+v %v", res, err)
	}
}

// TestServerSecretRefusals: a configured secret that differs from the one
// an earlier release stored is refused (starting would void its PINs), on
// both engines; PostgreSQL without a configured secret is refused with a
// message that says what to set.
func TestServerSecretRefusals(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		cfg := store.Config{Driver: st.Driver()}
		if st.Driver() == store.SQLite {
			cfg.DSN = filepath.Join(t.TempDir(), "other.db")
		}
		legacy := []byte(strings.Repeat("L", 32))
		if err := store.PutLegacyServerSecret(st, legacy); err != nil {
			t.Fatal(err)
		}
		_, err := st.ServerSecret(ctx, []byte(strings.Repeat("X", 32)), "", cfg)
		if !errors.Is(err, store.ErrSecretConfig) || !strings.Contains(err.Error(), "pairingd secret export") {
			t.Fatalf("a different configured secret: %v", err)
		}
		if bytes.Contains([]byte(err.Error()), legacy) {
			t.Fatal("the message holds the secret")
		}
		if got, _ := st.LegacyServerSecret(ctx); !bytes.Equal(got, legacy) {
			t.Fatal("a refused start deleted the stored secret")
		}
		if st.Driver() != store.Postgres {
			return
		}
		_, err = st.ServerSecret(ctx, nil, "", cfg)
		if !errors.Is(err, store.ErrSecretConfig) || !strings.Contains(err.Error(), "PAIRINGD_PAIRING_SECRET_FILE") || !strings.Contains(err.Error(), "secret export") {
			t.Fatalf("PostgreSQL with the stored secret and nothing configured: %v", err)
		}
		missing := filepath.Join(t.TempDir(), "missing.key")
		if _, err = st.ServerSecret(ctx, nil, missing, cfg); !errors.Is(err, store.ErrSecretConfig) {
			t.Fatalf("PostgreSQL with a missing secret file: %v", err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a secret file was made on PostgreSQL, where instances must share one")
		}
		// The exported file is the way through: same secret, row gone.
		exported := filepath.Join(t.TempDir(), "exported.key")
		if err := store.CreateSecretFile(exported, legacy); err != nil {
			t.Fatal(err)
		}
		got, err := st.ServerSecret(ctx, nil, exported, cfg)
		if err != nil || !bytes.Equal(got, legacy) {
			t.Fatalf("exported file: %v", err)
		}
		if _, err := st.LegacyServerSecret(ctx); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("the secret is still in settings: %v", err)
		}
		_, err = st.ServerSecret(ctx, nil, "", cfg)
		if !errors.Is(err, store.ErrSecretConfig) || !strings.Contains(err.Error(), "openssl rand") {
			t.Fatalf("PostgreSQL with nothing configured: %v", err)
		}
	})
}
