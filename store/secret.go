package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pairingd/pairingd/pairing"
)

// The server secret keys the PIN HMAC (and the OpenID provider's sealing
// and CSRF keys). Whoever holds it and the PIN hashes can test every live
// PIN offline, so it never lives in the same place as the hashes: on SQLite
// it is a 0600 file beside the database, made on first start; on
// PostgreSQL (several instances on several hosts) it comes from the
// configuration, and the service refuses to start without it.

// ErrSecretConfig: the server secret cannot be found or does not agree
// with the one an earlier release stored; the message says what to set.
var ErrSecretConfig = errors.New("server secret")

// SecretFileSuffix names the default secret file: the SQLite database's
// path with this suffix.
const SecretFileSuffix = ".secret"

// EncodeSecret is the text form of a secret in a file, which
// pairing.HMACKey reads back to the same bytes: base64: and the standard
// base64 of its bytes, and a newline.
func EncodeSecret(b []byte) []byte {
	return []byte(pairing.Base64KeyPrefix + base64.StdEncoding.EncodeToString(b) + "\n")
}

// DefaultSecretFile is where the secret lives when pairing.secret and
// pairing.secret_file are empty: beside the SQLite database. "" on
// PostgreSQL and for an in-memory SQLite database.
func DefaultSecretFile(cfg Config) string {
	if cfg.Driver != SQLite {
		return ""
	}
	if f := SQLiteFile(cfg.DSN); f != "" {
		return f + SecretFileSuffix
	}
	return ""
}

// ServerSecret returns the secret that keys PIN hashes. configured is
// pairing.secret, file pairing.secret_file (either may be empty). In order:
//
//   - configured, if set;
//   - else the file (file, or on SQLite the default beside the database):
//     read if it exists; on SQLite created 0600 if it does not, from the
//     secret an earlier release stored in the database or else 32 fresh
//     random bytes; on PostgreSQL it must exist;
//   - on PostgreSQL without either, an ErrSecretConfig that says what to
//     set (and how to export the stored secret when there is one).
//
// A secret an earlier release stored in the settings table is deleted once
// the secret in force is the same (so PINs issued before stay valid); when
// they differ, ErrSecretConfig: starting would silently void those PINs.
func (s *Store) ServerSecret(ctx context.Context, configured []byte, file string, cfg Config) ([]byte, error) {
	legacy, err := s.LegacyServerSecret(ctx)
	if errors.Is(err, pairing.ErrNotFound) {
		legacy, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	key, from, err := s.resolveSecret(configured, file, cfg, legacy)
	if err != nil {
		return nil, err
	}
	if legacy != nil {
		if !bytes.Equal(legacy, key) {
			return nil, fmt.Errorf("%w: the database holds the server secret of an earlier release, and %s holds another one; "+
				"PINs and sign-in tokens issued with the stored secret would stop working. Either use the stored one "+
				"(write it out with `pairingd secret export --to FILE` and set PAIRINGD_PAIRING_SECRET_FILE=FILE), "+
				"or drop it with `pairingd secret forget`", ErrSecretConfig, from)
		}
		if _, err := s.ForgetLegacyServerSecret(ctx, legacy); err != nil {
			return nil, fmt.Errorf("server secret: remove the stored copy: %w", err)
		}
		s.log.Info("the server secret is no longer kept in the database", "now_in", from)
	}
	return key, nil
}

// resolveSecret finds the secret in force and says where it came from (for
// messages: never the secret itself).
func (s *Store) resolveSecret(configured []byte, file string, cfg Config, legacy []byte) ([]byte, string, error) {
	if len(configured) > 0 {
		return configured, "pairing.secret", nil
	}
	if file == "" {
		file = DefaultSecretFile(cfg)
	}
	if file == "" && s.driver == SQLite {
		// An in-memory database dies with the process: so may its secret.
		if legacy != nil {
			return legacy, "the database", nil
		}
		b, err := randomSecret()
		return b, "memory", err
	}
	if file == "" {
		if legacy != nil {
			return nil, "", fmt.Errorf("%w: pairing.secret is not set. On PostgreSQL the server secret comes from the configuration, "+
				"the same on every instance. An earlier release kept it in the database: write it to a file with "+
				"`pairingd secret export --to FILE`, then set PAIRINGD_PAIRING_SECRET_FILE=FILE (or pairing.secret_file: FILE) on every instance", ErrSecretConfig)
		}
		return nil, "", fmt.Errorf("%w: pairing.secret is not set. On PostgreSQL set PAIRINGD_PAIRING_SECRET_FILE (or pairing.secret_file) "+
			"to a file holding at least 32 random characters, the same on every instance (e.g. `openssl rand -base64 48 > FILE`)", ErrSecretConfig)
	}
	key, err := ReadSecretFile(file, s.log)
	if err == nil {
		return key, file, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	if s.driver != SQLite {
		return nil, "", fmt.Errorf("%w: pairing.secret_file: %s does not exist. On PostgreSQL every instance must read the same secret; "+
			"create the file (at least 32 random characters)%s", ErrSecretConfig, file, exportHint(legacy))
	}
	fresh := legacy
	if fresh == nil {
		if fresh, err = randomSecret(); err != nil {
			return nil, "", err
		}
	}
	if err := CreateSecretFile(file, fresh); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
		// Another process (a CLI command next to serve) made it first.
		key, err := ReadSecretFile(file, s.log)
		return key, file, err
	}
	if legacy != nil {
		s.log.Info("moved the server secret out of the database into its own file", "file", file)
	} else {
		s.log.Info("generated the server secret", "file", file)
	}
	return fresh, file, nil
}

func exportHint(legacy []byte) string {
	if legacy == nil {
		return ""
	}
	return ", e.g. with `pairingd secret export --to FILE`, which writes the secret an earlier release kept in the database"
}

func randomSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	return b, nil
}

// ReadSecretFile reads a secret file (the text of pairing.secret, a final
// newline dropped), narrowing its mode to 0600 if others may read it (with
// a warning when it cannot).
func ReadSecretFile(path string, log *slog.Logger) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: pairing.secret_file: %w", ErrSecretConfig, err)
	}
	if err := RestrictFile(path, log); err != nil {
		// A file pairingd does not own (a mounted secret) is the
		// operator's to protect: say so, and go on.
		log.Warn("the server secret file is readable by other users and its mode cannot be changed", "file", path, "err", err)
	}
	var key pairing.HMACKey
	if err := key.UnmarshalText([]byte(strings.TrimRight(string(raw), "\r\n"))); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSecretConfig, path, err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: %s: must hold at least 32 characters (or base64: and 32 bytes)", ErrSecretConfig, path)
	}
	return key, nil
}

// CreateSecretFile writes secret to a new file at path, mode 0600, whole
// or not at all: it is written and synced under a temporary name, then
// linked into place, which fails with fs.ErrExist when path exists (two
// processes starting at once: one wins, the other reads its file).
func CreateSecretFile(path string, secret []byte) error {
	dir := filepath.Dir(path)
	if err := EnsurePrivateDir(dir, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".pairingd-secret-*")
	if err != nil {
		return fmt.Errorf("server secret file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(EncodeSecret(secret))
	err = errors.Join(err, tmp.Chmod(PrivateFileMode), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("server secret file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("server secret file: %w", err)
	}
	// The new name must survive a crash before the stored copy is deleted.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
