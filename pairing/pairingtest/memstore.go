// Package pairingtest has in-memory fakes for testing code that uses the
// pairing service: a Store held in maps and a clock that tests step.
package pairingtest

import (
	"bytes"
	"context"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

var _ pairing.Store = (*MemStore)(nil)

type keyRow struct {
	pairing.APIKey
	failures    int
	windowStart time.Time
}

// state is everything the fake stores; Tx copies it to roll back.
type state struct {
	nextID     int64
	leads      map[int64]pairing.Lead
	webUsers   map[int64]pairing.WebUser
	grants     map[int64]pairing.GrantRecord
	keys       map[int64]keyRow
	persons    map[int64]bool
	audit      []pairing.AuditEvent
	siteEvents []pairing.SiteEvent
	linkTokens map[int64]pairing.LinkToken
	outbox     outboxState
	// missSpends: how many more SpendCredential calls change nothing.
	missSpends int
}

func (st *state) clone() state {
	c := *st
	c.leads = maps.Clone(st.leads)
	c.webUsers = maps.Clone(st.webUsers)
	c.grants = maps.Clone(st.grants)
	c.keys = maps.Clone(st.keys)
	c.persons = maps.Clone(st.persons)
	c.audit = append([]pairing.AuditEvent(nil), st.audit...)
	c.siteEvents = append([]pairing.SiteEvent(nil), st.siteEvents...)
	c.linkTokens = maps.Clone(st.linkTokens)
	c.outbox = st.outbox.clone()
	return c
}

// MemStore is an in-memory pairing.Store. Every call, and every Tx as a
// whole, runs under one mutex, so it behaves like a serializable database.
// A Tx whose fn fails is rolled back.
type MemStore struct {
	mu sync.Mutex
	st state
	// FailWith, when set, is returned by every call (database down).
	FailWith error
	// Serial makes the store say it serializes write transactions (as
	// SQLite does; Tx holds the lock throughout), so the service decides
	// key budgets inside transactions. Set it before pairing.New.
	Serial bool
}

// MissNextSpends makes the next n SpendCredential calls change no row even
// when the credential is spendable, as an UPDATE can on PostgreSQL when a
// concurrent writer's change decides its WHERE (the row re-read afterwards
// may look spendable again).
func (m *MemStore) MissNextSpends(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.missSpends = n
}

// SerializesWrites implements pairing.WriteSerializer.
func (m *MemStore) SerializesWrites() bool { return m.Serial }

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{st: state{
		leads: map[int64]pairing.Lead{}, webUsers: map[int64]pairing.WebUser{}, grants: map[int64]pairing.GrantRecord{},
		keys: map[int64]keyRow{}, persons: map[int64]bool{},
		linkTokens: map[int64]pairing.LinkToken{},
	}}
}

// repo runs the operations on a state without locking; MemStore and Tx
// hold the lock around it.
type repo struct{ st *state }

func (m *MemStore) do(fn func(r repo) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailWith != nil {
		return m.FailWith
	}
	return fn(repo{&m.st})
}

// Tx runs fn atomically; on error nothing fn did stays.
func (m *MemStore) Tx(ctx context.Context, fn func(pairing.Repo) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailWith != nil {
		return m.FailWith
	}
	saved := m.st.clone()
	if err := fn(repo{&m.st}); err != nil {
		m.st = saved
		return err
	}
	return nil
}

// Ping fails with FailWith.
func (m *MemStore) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.FailWith
}

// Audit returns the audit trail written so far.
func (m *MemStore) Audit() []pairing.AuditEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]pairing.AuditEvent(nil), m.st.audit...)
}

// SiteEvents returns the site events written so far.
func (m *MemStore) SiteEvents() []pairing.SiteEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]pairing.SiteEvent(nil), m.st.siteEvents...)
}

// Persons counts the persons.
func (m *MemStore) Persons() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.st.persons)
}

func (r repo) id() int64 { r.st.nextID++; return r.st.nextID }

// --- the Repo methods, on MemStore (locked) and on repo (in a Tx) ---

func (m *MemStore) LeadByKey(ctx context.Context, k pairing.LeadKey) (l pairing.Lead, err error) {
	err = m.do(func(r repo) error { l, err = r.LeadByKey(ctx, k); return err })
	return
}
func (r repo) LeadByKey(_ context.Context, k pairing.LeadKey) (pairing.Lead, error) {
	for _, l := range r.st.leads {
		if l.Channel == k.Channel && l.ExternalID == k.ExternalID {
			return l, nil
		}
	}
	return pairing.Lead{}, pairing.ErrNotFound
}

func (m *MemStore) LeadByID(ctx context.Context, id int64) (l pairing.Lead, err error) {
	err = m.do(func(r repo) error { l, err = r.LeadByID(ctx, id); return err })
	return
}
func (r repo) LeadByID(_ context.Context, id int64) (pairing.Lead, error) {
	l, ok := r.st.leads[id]
	if !ok {
		return pairing.Lead{}, pairing.ErrNotFound
	}
	return l, nil
}

func (m *MemStore) CreateLead(ctx context.Context, k pairing.LeadKey, p pairing.Profile, now time.Time) (l pairing.Lead, err error) {
	err = m.do(func(r repo) error { l, err = r.CreateLead(ctx, k, p, now); return err })
	return
}
func (r repo) CreateLead(ctx context.Context, k pairing.LeadKey, p pairing.Profile, now time.Time) (pairing.Lead, error) {
	if l, err := r.LeadByKey(ctx, k); err == nil {
		return l, nil
	}
	person := r.id()
	r.st.persons[person] = true
	l := pairing.Lead{ID: r.id(), PersonID: person, Channel: k.Channel, ExternalID: k.ExternalID, Profile: p, CreatedAt: now, UpdatedAt: now}
	r.st.leads[l.ID] = l
	wu := pairing.WebUser{ID: r.id(), PersonID: person, LeadID: l.ID, CreatedAt: now, UpdatedAt: now}
	r.st.webUsers[wu.ID] = wu
	return l, nil
}

func (m *MemStore) UpdateLeadProfile(ctx context.Context, id int64, p pairing.Profile, now time.Time) error {
	return m.do(func(r repo) error { return r.UpdateLeadProfile(ctx, id, p, now) })
}
func (r repo) UpdateLeadProfile(_ context.Context, id int64, p pairing.Profile, now time.Time) error {
	l, ok := r.st.leads[id]
	if !ok {
		return pairing.ErrNotFound
	}
	l.Profile, l.UpdatedAt = p, now
	r.st.leads[id] = l
	return nil
}

func (m *MemStore) SetLeadBlocked(ctx context.Context, id int64, b bool, now time.Time) (ch bool, err error) {
	err = m.do(func(r repo) error { ch, err = r.SetLeadBlocked(ctx, id, b, now); return err })
	return
}
func (r repo) SetLeadBlocked(_ context.Context, id int64, b bool, now time.Time) (bool, error) {
	l, ok := r.st.leads[id]
	if !ok {
		return false, pairing.ErrNotFound
	}
	if l.Blocked == b {
		return false, nil
	}
	l.Blocked, l.UpdatedAt = b, now
	r.st.leads[id] = l
	return true, nil
}

func (m *MemStore) LeadsOfPerson(ctx context.Context, pid int64) (ls []pairing.Lead, err error) {
	err = m.do(func(r repo) error { ls, err = r.LeadsOfPerson(ctx, pid); return err })
	return
}
func (r repo) LeadsOfPerson(_ context.Context, pid int64) ([]pairing.Lead, error) {
	var out []pairing.Lead
	for _, l := range r.st.leads {
		if l.PersonID == pid {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *MemStore) MergePerson(ctx context.Context, from, to int64, now time.Time) error {
	return m.do(func(r repo) error { return r.MergePerson(ctx, from, to, now) })
}
func (r repo) MergePerson(_ context.Context, from, to int64, now time.Time) error {
	for id, l := range r.st.leads {
		if l.PersonID == from {
			l.PersonID, l.UpdatedAt = to, now
			r.st.leads[id] = l
		}
	}
	for id, w := range r.st.webUsers {
		if w.PersonID == from {
			delete(r.st.webUsers, id)
		}
	}
	delete(r.st.persons, from)
	return nil
}

func (m *MemStore) WebUserByID(ctx context.Context, id int64) (w pairing.WebUser, err error) {
	err = m.do(func(r repo) error { w, err = r.WebUserByID(ctx, id); return err })
	return
}
func (r repo) WebUserByID(_ context.Context, id int64) (pairing.WebUser, error) {
	w, ok := r.st.webUsers[id]
	if !ok {
		return pairing.WebUser{}, pairing.ErrNotFound
	}
	return w, nil
}

func (m *MemStore) WebUserByPerson(ctx context.Context, pid int64) (w pairing.WebUser, err error) {
	err = m.do(func(r repo) error { w, err = r.WebUserByPerson(ctx, pid); return err })
	return
}
func (r repo) WebUserByPerson(_ context.Context, pid int64) (pairing.WebUser, error) {
	for _, w := range r.st.webUsers {
		if w.PersonID == pid {
			return w, nil
		}
	}
	return pairing.WebUser{}, pairing.ErrNotFound
}

func (m *MemStore) WebUserByUserID(ctx context.Context, uid string) (w pairing.WebUser, err error) {
	err = m.do(func(r repo) error { w, err = r.WebUserByUserID(ctx, uid); return err })
	return
}
func (r repo) WebUserByUserID(_ context.Context, uid string) (pairing.WebUser, error) {
	for _, w := range r.st.webUsers {
		if w.UserID == uid && uid != "" {
			return w, nil
		}
	}
	return pairing.WebUser{}, pairing.ErrNotFound
}

func (m *MemStore) SetCredential(ctx context.Context, id int64, c pairing.Credential, now time.Time) error {
	return m.do(func(r repo) error { return r.SetCredential(ctx, id, c, now) })
}
func (r repo) SetCredential(_ context.Context, id int64, c pairing.Credential, now time.Time) error {
	w, ok := r.st.webUsers[id]
	if !ok {
		return pairing.ErrNotFound
	}
	w.BUIDHash, w.PINHash, w.PINIssuedAt, w.PINExpiresAt = c.BUIDHash, c.PINHash, c.IssuedAt, c.ExpiresAt
	w.MagicExpiresAt, w.LeadID, w.PINUsedAt, w.UpdatedAt = c.MagicExpiresAt, c.LeadID, time.Time{}, now
	r.st.webUsers[id] = w
	return nil
}

func (m *MemStore) ClaimIssue(ctx context.Context, id int64, now time.Time, min time.Duration) (ok bool, err error) {
	err = m.do(func(r repo) error { ok, err = r.ClaimIssue(ctx, id, now, min); return err })
	return
}
func (r repo) ClaimIssue(_ context.Context, id int64, now time.Time, min time.Duration) (bool, error) {
	w, ok := r.st.webUsers[id]
	if !ok {
		return false, pairing.ErrNotFound
	}
	if !w.PINIssuedAt.IsZero() && w.PINIssuedAt.After(now.Add(-min)) {
		return false, nil
	}
	w.PINIssuedAt = now
	r.st.webUsers[id] = w
	return true, nil
}

func (m *MemStore) SwapPINAttempts(ctx context.Context, id int64, old, next pairing.PINAttempts, now time.Time) (a pairing.PINAttempts, ok bool, err error) {
	err = m.do(func(r repo) error { a, ok, err = r.SwapPINAttempts(ctx, id, old, next, now); return err })
	return
}
func (r repo) SwapPINAttempts(_ context.Context, id int64, old, next pairing.PINAttempts, now time.Time) (pairing.PINAttempts, bool, error) {
	w, ok := r.st.webUsers[id]
	if !ok {
		return pairing.PINAttempts{}, false, pairing.ErrNotFound
	}
	if w.FailedAttempts != old.Failed || !w.LockedUntil.Equal(old.LockedUntil) {
		return pairing.PINAttempts{Failed: w.FailedAttempts, LockedUntil: w.LockedUntil}, false, nil
	}
	w.FailedAttempts, w.LockedUntil, w.UpdatedAt = next.Failed, next.LockedUntil, now
	r.st.webUsers[id] = w
	return next, true, nil
}

func (m *MemStore) SpendCredential(ctx context.Context, id int64, bh, ph []byte, now time.Time, g pairing.KeyGuard) (w pairing.WebUser, ok bool, err error) {
	err = m.do(func(r repo) error { w, ok, err = r.SpendCredential(ctx, id, bh, ph, now, g); return err })
	return
}
func (r repo) SpendCredential(_ context.Context, id int64, bh, ph []byte, now time.Time, g pairing.KeyGuard) (pairing.WebUser, bool, error) {
	if r.st.missSpends > 0 {
		r.st.missSpends--
		return pairing.WebUser{}, false, nil
	}
	if g.KeyID != 0 {
		if k, ok := r.st.keys[g.KeyID]; ok && k.windowStart.After(g.WindowStart) && k.failures >= g.Budget {
			return pairing.WebUser{}, false, nil
		}
	}
	w, ok := r.st.webUsers[id]
	if !ok || !bytes.Equal(w.BUIDHash, bh) || !w.PINUsedAt.IsZero() || w.LockedUntil.After(now) {
		return pairing.WebUser{}, false, nil
	}
	if ph == nil {
		if !w.MagicExpiresAt.After(now) {
			return pairing.WebUser{}, false, nil
		}
	} else if !bytes.Equal(w.PINHash, ph) || !w.PINExpiresAt.After(now) {
		return pairing.WebUser{}, false, nil
	}
	w.PINUsedAt, w.FailedAttempts, w.LockedUntil, w.UpdatedAt = now, 0, time.Time{}, now
	r.st.webUsers[id] = w
	return w, true, nil
}

func (m *MemStore) SetLink(ctx context.Context, id int64, uid string, now time.Time) error {
	return m.do(func(r repo) error { return r.SetLink(ctx, id, uid, now) })
}
func (r repo) SetLink(ctx context.Context, id int64, uid string, now time.Time) error {
	if other, err := r.WebUserByUserID(ctx, uid); err == nil && other.ID != id {
		return pairing.ErrRaced
	}
	w, ok := r.st.webUsers[id]
	if !ok {
		return pairing.ErrNotFound
	}
	if w.UserID != "" {
		return pairing.ErrRaced
	}
	w.UserID, w.LinkedAt, w.UpdatedAt = uid, now, now
	r.st.webUsers[id] = w
	return nil
}

func (m *MemStore) ClearLink(ctx context.Context, id int64, userID string, now time.Time) error {
	return m.do(func(r repo) error { return r.ClearLink(ctx, id, userID, now) })
}
func (r repo) ClearLink(_ context.Context, id int64, userID string, now time.Time) error {
	w, ok := r.st.webUsers[id]
	if !ok {
		return pairing.ErrNotFound
	}
	if w.UserID != userID {
		return pairing.ErrRaced
	}
	w.UserID, w.LinkedAt, w.UpdatedAt = "", time.Time{}, now
	r.st.webUsers[id] = w
	return nil
}

func (m *MemStore) ListLinks(ctx context.Context, after int64, limit int) (ws []pairing.WebUser, err error) {
	err = m.do(func(r repo) error { ws, err = r.ListLinks(ctx, after, limit); return err })
	return
}
func (r repo) ListLinks(_ context.Context, after int64, limit int) ([]pairing.WebUser, error) {
	var out []pairing.WebUser
	for _, w := range r.st.webUsers {
		if w.Linked() && w.ID > after {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *MemStore) CreateGrant(ctx context.Context, g pairing.GrantRecord) error {
	return m.do(func(r repo) error { return r.CreateGrant(ctx, g) })
}
func (r repo) CreateGrant(_ context.Context, g pairing.GrantRecord) error {
	g.ID = r.id()
	r.st.grants[g.ID] = g
	return nil
}

func (m *MemStore) GrantByHash(ctx context.Context, h []byte) (g pairing.GrantRecord, err error) {
	err = m.do(func(r repo) error { g, err = r.GrantByHash(ctx, h); return err })
	return
}
func (r repo) GrantByHash(_ context.Context, h []byte) (pairing.GrantRecord, error) {
	for _, g := range r.st.grants {
		if bytes.Equal(g.Hash, h) {
			return g, nil
		}
	}
	return pairing.GrantRecord{}, pairing.ErrNotFound
}

func (m *MemStore) SpendGrant(ctx context.Context, id int64, now time.Time) (ok bool, err error) {
	err = m.do(func(r repo) error { ok, err = r.SpendGrant(ctx, id, now); return err })
	return
}
func (r repo) SpendGrant(_ context.Context, id int64, now time.Time) (bool, error) {
	g, ok := r.st.grants[id]
	if !ok || !g.UsedAt.IsZero() || !g.ExpiresAt.After(now) {
		return false, nil
	}
	g.UsedAt = now
	r.st.grants[id] = g
	return true, nil
}

func (m *MemStore) CreateAPIKey(ctx context.Context, k pairing.APIKey) (out pairing.APIKey, err error) {
	err = m.do(func(r repo) error { out, err = r.CreateAPIKey(ctx, k); return err })
	return
}
func (r repo) CreateAPIKey(_ context.Context, k pairing.APIKey) (pairing.APIKey, error) {
	k.ID = r.id()
	r.st.keys[k.ID] = keyRow{APIKey: k}
	return k, nil
}

func (m *MemStore) APIKeyByHash(ctx context.Context, h []byte) (k pairing.APIKey, err error) {
	err = m.do(func(r repo) error { k, err = r.APIKeyByHash(ctx, h); return err })
	return
}
func (r repo) APIKeyByHash(_ context.Context, h []byte) (pairing.APIKey, error) {
	for _, k := range r.st.keys {
		if bytes.Equal(k.Hash, h) {
			return k.APIKey, nil
		}
	}
	return pairing.APIKey{}, pairing.ErrNotFound
}

func (m *MemStore) ListAPIKeys(ctx context.Context) (ks []pairing.APIKey, err error) {
	err = m.do(func(r repo) error { ks, err = r.ListAPIKeys(ctx); return err })
	return
}
func (r repo) ListAPIKeys(context.Context) ([]pairing.APIKey, error) {
	var out []pairing.APIKey
	for _, k := range r.st.keys {
		out = append(out, k.APIKey)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *MemStore) RevokeAPIKey(ctx context.Context, idOrName string, now time.Time) error {
	return m.do(func(r repo) error { return r.RevokeAPIKey(ctx, idOrName, now) })
}
func (r repo) RevokeAPIKey(_ context.Context, idOrName string, now time.Time) error {
	for id, k := range r.st.keys {
		if (strconv.FormatInt(id, 10) == idOrName || k.Name == idOrName) && k.RevokedAt.IsZero() {
			k.RevokedAt = now
			r.st.keys[id] = k
			return nil
		}
	}
	return pairing.ErrNotFound
}

func (m *MemStore) KeyFailures(ctx context.Context, id int64, now time.Time, window time.Duration) (n int, err error) {
	err = m.do(func(r repo) error { n, err = r.KeyFailures(ctx, id, now, window); return err })
	return
}
func (r repo) KeyFailures(_ context.Context, id int64, now time.Time, window time.Duration) (int, error) {
	k, ok := r.st.keys[id]
	if !ok {
		return 0, pairing.ErrNotFound
	}
	if !k.windowStart.After(now.Add(-window)) {
		return 0, nil
	}
	return k.failures, nil
}

func (m *MemStore) AddKeyFailure(ctx context.Context, id int64, now time.Time, window time.Duration) (n int, err error) {
	err = m.do(func(r repo) error { n, err = r.AddKeyFailure(ctx, id, now, window); return err })
	return
}
func (r repo) AddKeyFailure(_ context.Context, id int64, now time.Time, window time.Duration) (int, error) {
	k, ok := r.st.keys[id]
	if !ok {
		return 0, pairing.ErrNotFound
	}
	if !k.windowStart.After(now.Add(-window)) {
		k.windowStart, k.failures = now, 0
	}
	k.failures++
	r.st.keys[id] = k
	return k.failures, nil
}

func (m *MemStore) ReserveKeyFailure(ctx context.Context, id int64, now time.Time, window time.Duration, budget int) (ok bool, err error) {
	err = m.do(func(r repo) error { ok, err = r.ReserveKeyFailure(ctx, id, now, window, budget); return err })
	return
}
func (r repo) ReserveKeyFailure(_ context.Context, id int64, now time.Time, window time.Duration, budget int) (bool, error) {
	k, ok := r.st.keys[id]
	if !ok {
		return false, pairing.ErrNotFound
	}
	if !k.windowStart.After(now.Add(-window)) {
		k.windowStart, k.failures = now, 0
	}
	if k.failures >= budget {
		return false, nil
	}
	k.failures++
	r.st.keys[id] = k
	return true, nil
}

func (m *MemStore) RefundKeyFailure(ctx context.Context, id int64, now time.Time, window time.Duration) error {
	return m.do(func(r repo) error { return r.RefundKeyFailure(ctx, id, now, window) })
}
func (r repo) RefundKeyFailure(_ context.Context, id int64, now time.Time, window time.Duration) error {
	k, ok := r.st.keys[id]
	if !ok {
		return pairing.ErrNotFound
	}
	if k.windowStart.After(now.Add(-window)) && k.failures > 0 {
		k.failures--
		r.st.keys[id] = k
	}
	return nil
}

func (m *MemStore) AddAudit(ctx context.Context, e pairing.AuditEvent) error {
	return m.do(func(r repo) error { return r.AddAudit(ctx, e) })
}
func (r repo) AddAudit(_ context.Context, e pairing.AuditEvent) error {
	r.st.audit = append(r.st.audit, e)
	return nil
}

func (m *MemStore) AddSiteEvent(ctx context.Context, e pairing.SiteEvent) error {
	return m.do(func(r repo) error { return r.AddSiteEvent(ctx, e) })
}
func (r repo) AddSiteEvent(_ context.Context, e pairing.SiteEvent) error {
	e.ID = r.id()
	r.st.siteEvents = append(r.st.siteEvents, e)
	return nil
}

// SiteEventsAfter lists site events with id > after, oldest first.
func (m *MemStore) SiteEventsAfter(_ context.Context, after int64, limit int) ([]pairing.SiteEvent, error) {
	var out []pairing.SiteEvent
	err := m.do(func(r repo) error {
		for _, e := range r.st.siteEvents { // appended in id order
			if e.ID > after && len(out) < limit {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}
