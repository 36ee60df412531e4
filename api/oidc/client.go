package oidc

import (
	"context"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/pairingd/pairingd/store"
)

// client is a registered site as op sees it: Authorization Code only,
// exact redirect URIs, the secret checked by the storage.
type client struct {
	c     store.OIDCClient
	idTTL time.Duration
}

var _ op.Client = client{}

func (c client) GetID() string                    { return c.c.ID }
func (c client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.c.RedirectURIs }

// ApplicationType: a public client (single-page or mobile app) is
// "native" to op, which allows loopback and custom-scheme redirects.
func (c client) ApplicationType() op.ApplicationType {
	if c.c.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c client) LoginURL(id string) string    { return signInPath + id }
func (c client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c client) IDTokenLifetime() time.Duration { return c.idTTL }

// DevMode lets op accept http:// redirect URIs; registration allows them
// only for loopback hosts, and matching stays exact.
func (c client) DevMode() bool { return true }

func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c client) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion puts the profile claims in the ID token
// too, so a relying party that never calls userinfo still gets them.
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }

// clientTTL bounds how long an instance keeps a client it read: a
// revocation (by the CLI or another instance) takes effect within it. An
// exchange reads its client twice (op looks it up, then checks the
// secret); the cache saves both reads.
const clientTTL = 5 * time.Second

// clientCache keeps the clients found by id; unknown ids are not kept,
// so a guessed id costs a read and no memory, and a new client works at
// once.
type clientCache struct {
	st  Store
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedClient
}

type cachedClient struct {
	c    store.OIDCClient
	read time.Time
}

func (cc *clientCache) get(ctx context.Context, id string) (store.OIDCClient, error) {
	now := cc.now()
	cc.mu.Lock()
	e, ok := cc.m[id]
	cc.mu.Unlock()
	if ok && now.Sub(e.read) < clientTTL && !now.Before(e.read) {
		return e.c, nil
	}
	c, err := cc.st.OIDCClient(ctx, id)
	if err != nil {
		return store.OIDCClient{}, err
	}
	cc.mu.Lock()
	if cc.m == nil || len(cc.m) > 10_000 {
		cc.m = map[string]cachedClient{}
	}
	cc.m[id] = cachedClient{c: c, read: now}
	cc.mu.Unlock()
	return c, nil
}
