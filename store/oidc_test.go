package store_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pairingd/pairingd/pairing"
	"github.com/pairingd/pairingd/store"
	"github.com/pairingd/pairingd/store/storetest"
)

// TestOIDCClientsStoredAndRevoked: a client reads back as stored (redirect
// URIs, public flag, no secret for a public one); revoking it deletes its
// access tokens; a second revoke is ErrNotFound.
func TestOIDCClientsStoredAndRevoked(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		conf := store.OIDCClient{ID: "c1", Name: "Shop", SecretHash: []byte("secret-hash"),
			RedirectURIs: []string{"https://shop.example/cb", "https://shop.example/cb2"}, CreatedAt: t0}
		pub := store.OIDCClient{ID: "c2", Name: "App", RedirectURIs: []string{"shop://cb"}, Public: true, CreatedAt: t0.Add(time.Second)}
		for _, c := range []store.OIDCClient{conf, pub} {
			if err := st.CreateOIDCClient(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateOIDCClient(ctx, conf); !errors.Is(err, pairing.ErrRaced) {
			t.Fatalf("duplicate client id: %v", err)
		}
		got, err := st.OIDCClient(ctx, "c1")
		if err != nil || got.Name != "Shop" || !bytes.Equal(got.SecretHash, conf.SecretHash) || got.Public ||
			!slices.Equal(got.RedirectURIs, conf.RedirectURIs) || !got.CreatedAt.Equal(t0) || !got.RevokedAt.IsZero() {
			t.Fatalf("client: %+v, %v", got, err)
		}
		list, err := st.ListOIDCClients(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "c1" || list[1].ID != "c2" || !list[1].Public || list[1].SecretHash != nil {
			t.Fatalf("list: %+v, %v", list, err)
		}
		tok := store.AccessTokenRecord{Hash: []byte("at"), RequestID: "r1", ClientID: "c1", Subject: "sub",
			Scopes: []string{"openid", "profile"}, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
		if err := st.CreateAccessToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if at, err := st.AccessToken(ctx, []byte("at")); err != nil || !slices.Equal(at.Scopes, tok.Scopes) || at.ClientID != "c1" {
			t.Fatalf("access token: %+v, %v", at, err)
		}
		if err := st.RevokeOIDCClient(ctx, "c1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AccessToken(ctx, []byte("at")); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("token of a revoked client: %v", err)
		}
		if err := st.RevokeOIDCClient(ctx, "c1", t0.Add(time.Minute)); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("second revoke: %v", err)
		}
		if got, _ := st.OIDCClient(ctx, "c1"); !got.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("revoked at %v", got.RevokedAt)
		}
	})
}

// TestSignInRequestLifecycle walks one request through the store: the
// first browser binds it, the first match code stays, one chat answer
// wins, the code is set once and spent once, and a replay deletes the
// tokens issued for it.
func TestSignInRequestLifecycle(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		if err := st.CreateOIDCClient(ctx, store.OIDCClient{ID: "c1", Name: "Shop", RedirectURIs: []string{"https://s/cb"}, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		req := store.AuthRequestRecord{ID: "r1", ClientID: "c1", Request: []byte(`{"scope":"openid"}`), ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}
		if err := st.CreateAuthRequest(ctx, req); err != nil {
			t.Fatal(err)
		}
		if got, err := st.AuthRequest(ctx, "r1"); err != nil || got.Status != pairing.SignInPending || got.BrowserHash != nil || string(got.Request) != string(req.Request) {
			t.Fatalf("new request: %+v, %v", got, err)
		}
		if ok, err := st.BindBrowser(ctx, "r1", []byte("browser-a")); !ok || err != nil {
			t.Fatalf("first browser: %v, %v", ok, err)
		}
		if ok, err := st.BindBrowser(ctx, "r1", []byte("browser-b")); ok || err != nil {
			t.Fatalf("second browser: %v, %v", ok, err)
		}

		toks := []pairing.SignInToken{{Hash: []byte("tg"), RequestID: "r1", Channel: "telegram", ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}}
		if code, err := st.AddSignInTokens(ctx, "r1", "1234", toks); err != nil || code != "1234" {
			t.Fatalf("first match code: %q, %v", code, err)
		}
		more := []pairing.SignInToken{{Hash: []byte("fb"), RequestID: "r1", Channel: "messenger", ExpiresAt: t0.Add(10 * time.Minute), CreatedAt: t0}}
		if code, err := st.AddSignInTokens(ctx, "r1", "9999", more); err != nil || code != "1234" {
			t.Fatalf("second match code: %q, %v", code, err)
		}
		tg, err := st.SignInTokenByHash(ctx, []byte("tg"))
		if err != nil || tg.RequestID != "r1" || tg.Channel != "telegram" {
			t.Fatalf("token: %+v, %v", tg, err)
		}
		fb, _ := st.SignInTokenByHash(ctx, []byte("fb"))

		if err := st.SetAuthCode(ctx, "r1", []byte("code"), t0.Add(time.Minute)); !errors.Is(err, pairing.ErrTokenUsed) {
			t.Fatalf("code before confirmation: %v", err)
		}
		sub, err := st.SubjectOf(ctx, 7, "subject-a", t0)
		if err != nil || sub != "subject-a" {
			t.Fatalf("first subject: %q, %v", sub, err)
		}
		if sub, err := st.SubjectOf(ctx, 7, "subject-b", t0); err != nil || sub != "subject-a" {
			t.Fatalf("second subject: %q, %v", sub, err)
		}
		now := t0.Add(time.Minute)
		auth := pairing.SignInAuth{PersonID: 7, Subject: "subject-a", AMR: []string{"chat", "telegram"}, AuthTime: now}
		if won, err := st.FinishSignIn(ctx, tg.ID, 11, "r1", pairing.SignInConfirmed, auth, now); !won || err != nil {
			t.Fatalf("confirm: %v, %v", won, err)
		}
		if won, err := st.FinishSignIn(ctx, fb.ID, 12, "r1", pairing.SignInDeclined, auth, now); won || err != nil {
			t.Fatalf("a later answer: %v, %v", won, err)
		}
		if won, err := st.AuthenticateSignIn(ctx, "r1", auth, now); won || err != nil {
			t.Fatalf("a session after the answer: %v, %v", won, err)
		}
		got, err := st.SignInRequest(ctx, "r1")
		if err != nil || got.Status != pairing.SignInConfirmed || got.ClientName != "Shop" || got.MatchCode != "1234" ||
			got.PersonID != 7 || !slices.Equal(got.AMR, auth.AMR) || !got.AuthTime.Equal(now) {
			t.Fatalf("confirmed request: %+v, %v", got, err)
		}
		if pid, at, err := st.PersonBySubject(ctx, "subject-a"); err != nil || pid != 7 || !at.Equal(now) {
			t.Fatalf("person by subject: %d %v %v", pid, at, err)
		}

		if err := st.SetAuthCode(ctx, "r1", []byte("code"), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAuthCode(ctx, "r1", []byte("code2"), now.Add(time.Minute)); !errors.Is(err, pairing.ErrTokenUsed) {
			t.Fatalf("second code: %v", err)
		}
		// The exchange's access token is stored with the spend.
		issue := func(rec store.AuthRequestRecord) (store.AccessTokenRecord, error) {
			return store.AccessTokenRecord{Hash: []byte("at"), RequestID: rec.ID, ClientID: rec.ClientID, Subject: rec.Subject,
				Scopes: []string{"openid"}, ExpiresAt: now.Add(time.Hour), CreatedAt: now}, nil
		}
		rec, spent, err := st.SpendAuthCodeIssuing(ctx, []byte("code"), now, now.Add(time.Hour), issue)
		if err != nil || !spent || rec.ID != "r1" || rec.Subject != "subject-a" {
			t.Fatalf("spend: %+v %v %v", rec, spent, err)
		}
		if at, err := st.AccessToken(ctx, []byte("at")); err != nil || at.RequestID != "r1" || at.Subject != "subject-a" || at.ClientID != "c1" {
			t.Fatalf("token stored with the spend: %+v, %v", at, err)
		}
		// A replay issues nothing and deletes what the spend issued.
		issued := false
		if _, spent, err := st.SpendAuthCodeIssuing(ctx, []byte("code"), now, now.Add(time.Hour), func(store.AuthRequestRecord) (store.AccessTokenRecord, error) {
			issued = true
			return store.AccessTokenRecord{}, nil
		}); spent || issued || err != nil {
			t.Fatalf("replay: spent %v, issued %v, %v", spent, issued, err)
		}
		if _, err := st.AccessToken(ctx, []byte("at")); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("token after a replay: %v", err)
		}
	})
}

// TestSigningKeysAndSessions: rotation retires the key in use; pruning
// drops expired state and keys retired long enough ago.
func TestSigningKeysAndSessions(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, st *store.Store) {
		if err := st.AddSigningKey(ctx, store.SigningKeyRecord{ID: "k1", Algorithm: "RS256", PrivateKey: []byte("der1"), CreatedAt: t0}, true); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(time.Hour)
		if err := st.AddSigningKey(ctx, store.SigningKeyRecord{ID: "k2", Algorithm: "RS256", PrivateKey: []byte("der2"), CreatedAt: later}, true); err != nil {
			t.Fatal(err)
		}
		keys, err := st.SigningKeys(ctx, t0)
		if err != nil || len(keys) != 2 || keys[0].ID != "k2" || !keys[0].RetiredAt.IsZero() || !keys[1].RetiredAt.Equal(later) {
			t.Fatalf("keys: %+v, %v", keys, err)
		}
		if keys, _ := st.SigningKeys(ctx, later); len(keys) != 1 || keys[0].ID != "k2" {
			t.Fatalf("keys retired after %v: %+v", later, keys)
		}

		s := store.SessionRecord{Hash: []byte("sess"), PersonID: 7, AMR: []string{"chat"}, AuthTime: t0, ExpiresAt: t0.Add(24 * time.Hour), CreatedAt: t0}
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Session(ctx, []byte("sess")); err != nil || got.PersonID != 7 || !slices.Equal(got.AMR, s.AMR) {
			t.Fatalf("session: %+v, %v", got, err)
		}
		if err := st.DeletePersonSessions(ctx, 7, "subject-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Session(ctx, []byte("sess")); !errors.Is(err, pairing.ErrNotFound) {
			t.Fatalf("session after end-session: %v", err)
		}
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		n, err := st.PruneSignIn(ctx, t0.Add(25*time.Hour), later.Add(time.Second))
		if err != nil || n != 2 {
			t.Fatalf("pruned %d, %v; want the session and the retired key", n, err)
		}
		if keys, _ := st.SigningKeys(ctx, time.Time{}); len(keys) != 1 || keys[0].ID != "k2" {
			t.Fatalf("keys after prune: %+v", keys)
		}
	})
}
