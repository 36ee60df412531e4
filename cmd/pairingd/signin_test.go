package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	oidcapi "github.com/pairingd/pairingd/api/oidc"
	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// The serve loop's sign-in prune deletes expired requests, tokens and
// sessions and signing keys retired past the key retention, and keeps
// what is still alive.
func TestSignInPruneLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.SQLite(t)
	cfg := oidcapi.DefaultConfig()
	now := time.Now().UTC()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	for _, r := range []store.AuthRequestRecord{
		{ID: "expired", ClientID: "c", Request: []byte("{}"), ExpiresAt: past, CreatedAt: past},
		{ID: "alive", ClientID: "c", Request: []byte("{}"), ExpiresAt: future, CreatedAt: now},
	} {
		if err := st.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []store.SessionRecord{
		{Hash: []byte("old-session"), PersonID: 1, AuthTime: past, ExpiresAt: past, CreatedAt: past},
		{Hash: []byte("new-session"), PersonID: 1, AuthTime: now, ExpiresAt: future, CreatedAt: now},
	} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateAccessToken(ctx, store.AccessTokenRecord{Hash: []byte("old-token"), RequestID: "expired", ClientID: "c", Subject: "s", ExpiresAt: past, CreatedAt: past}); err != nil {
		t.Fatal(err)
	}
	// Three keys: one retired long before the retention, one retired
	// within it (tokens it signed may still be verified), one in use.
	retiredLongAgo := now.Add(-cfg.KeyRetention() - time.Hour)
	for i, k := range []store.SigningKeyRecord{
		{ID: "k-old", CreatedAt: retiredLongAgo.Add(-time.Hour)},
		{ID: "k-recent", CreatedAt: retiredLongAgo},
		{ID: "k-current", CreatedAt: now.Add(-time.Minute)},
	} {
		k.Algorithm, k.PrivateKey = "RS256", []byte("der")
		if err := st.AddSigningKey(ctx, k, i > 0); err != nil {
			t.Fatal(err)
		}
	}

	done := make(chan error, 1)
	go func() { done <- signInPruneLoop(st, slog.New(slog.DiscardHandler), cfg)(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errReq := st.AuthRequest(ctx, "expired")
		_, errSess := st.Session(ctx, []byte("old-session"))
		_, errTok := st.AccessToken(ctx, []byte("old-token"))
		keys, err := st.SigningKeys(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(errReq, pairing.ErrNotFound) && errors.Is(errSess, pairing.ErrNotFound) && errors.Is(errTok, pairing.ErrNotFound) && len(keys) == 2 {
			if keys[0].ID != "k-current" || keys[1].ID != "k-recent" {
				t.Fatalf("keys after prune: %+v", keys)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not pruned: request %v, session %v, token %v, %d keys", errReq, errSess, errTok, len(keys))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.AuthRequest(ctx, "alive"); err != nil {
		t.Fatalf("a live request was pruned: %v", err)
	}
	if _, err := st.Session(ctx, []byte("new-session")); err != nil {
		t.Fatalf("a live session was pruned: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("signInPruneLoop returned %v", err)
	}
}
