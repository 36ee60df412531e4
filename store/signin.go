package store

import (
	"context"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// The domain side of sign-in (migration 0011): the request's status, its
// chat tokens and the persons' subjects. The protocol side is oidc.go.

var _ pairing.SignInStore = (*Store)(nil)

type signInTokenRow struct {
	ID        int64  `db:"id"`
	Hash      []byte `db:"hash"`
	RequestID string `db:"request_id"`
	Channel   string `db:"channel"`
	ExpiresAt int64  `db:"expires_at"`
	UsedAt    int64  `db:"used_at"`
	LeadID    int64  `db:"lead_id"`
	CreatedAt int64  `db:"created_at"`
}

// SignInRequest reads the domain's view of an authorization request, with
// the client's name.
func (r repo) SignInRequest(ctx context.Context, id string) (pairing.SignInRequest, error) {
	row, err := r.authRequestBy(ctx, r.r, "id", id)
	if err != nil {
		return pairing.SignInRequest{}, err
	}
	var clientName string
	if err := r.queryOne(ctx, r.r, `SELECT name FROM oidc_clients WHERE id = ?`, []any{row.ClientID}, &clientName); err != nil {
		return pairing.SignInRequest{}, err
	}
	return pairing.SignInRequest{
		ID: row.ID, ClientID: row.ClientID, ClientName: clientName, MatchCode: row.MatchCode,
		Status: pairing.SignInStatus(row.Status), PersonID: row.PersonID, Subject: row.Subject,
		AMR: splitWords(row.AMR), AuthTime: tm(row.AuthTime), ExpiresAt: tm(row.ExpiresAt),
	}, nil
}

// AddSignInTokens sets the request's match code unless one is set (the
// first page load wins) and stores the chat tokens, in one transaction;
// it returns the match code the request has.
func (r repo) AddSignInTokens(ctx context.Context, requestID, matchCode string, toks []pairing.SignInToken) (string, error) {
	var code string
	err := r.atomic(ctx, func(tx repo) error {
		if _, err := tx.exec(ctx, `UPDATE oidc_auth_requests SET match_code = ? WHERE id = ? AND match_code = ''`, matchCode, requestID); err != nil {
			return err
		}
		for _, t := range toks {
			if _, err := tx.exec(ctx, `INSERT INTO signin_tokens (hash, request_id, channel, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`,
				t.Hash, t.RequestID, t.Channel, us(t.ExpiresAt), us(t.CreatedAt)); err != nil {
				return err
			}
		}
		return tx.queryOne(ctx, tx.w, `SELECT match_code FROM oidc_auth_requests WHERE id = ?`, []any{requestID}, &code)
	})
	return code, err
}

func (r repo) SignInTokenByHash(ctx context.Context, hash []byte) (pairing.SignInToken, error) {
	return getConverted(ctx, r, r.r, func(row signInTokenRow) pairing.SignInToken {
		return pairing.SignInToken{
			ID: row.ID, Hash: row.Hash, RequestID: row.RequestID, Channel: row.Channel,
			ExpiresAt: tm(row.ExpiresAt), UsedAt: tm(row.UsedAt), CreatedAt: tm(row.CreatedAt),
		}
	}, `SELECT `+columnsOf[signInTokenRow]("")+` FROM signin_tokens WHERE hash = ?`, hash)
}

// FinishSignIn: the request's conditional UPDATE (still pending, not
// expired) decides between concurrent answers; the token is spent in the
// same transaction.
func (r repo) FinishSignIn(ctx context.Context, tokenID, leadID int64, requestID string, status pairing.SignInStatus, auth pairing.SignInAuth, now time.Time) (bool, error) {
	won := false
	err := r.atomic(ctx, func(tx repo) error {
		n, err := tx.exec(ctx, `UPDATE signin_tokens SET used_at = ?, lead_id = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`, us(now), leadID, tokenID, us(now))
		if err != nil || n != 1 {
			return err
		}
		won, err = tx.authenticate(ctx, requestID, status, auth, now)
		return err
	})
	return won && err == nil, err
}

func (r repo) AuthenticateSignIn(ctx context.Context, requestID string, auth pairing.SignInAuth, now time.Time) (bool, error) {
	won := false
	err := r.atomic(ctx, func(tx repo) error {
		var err error
		won, err = tx.authenticate(ctx, requestID, pairing.SignInConfirmed, auth, now)
		return err
	})
	return won && err == nil, err
}

// authenticate moves a pending, unexpired request to status and, on a
// confirmation, stamps the subject's last sign-in (the window of
// POST /v1/links/oidc).
func (r repo) authenticate(ctx context.Context, requestID string, status pairing.SignInStatus, a pairing.SignInAuth, now time.Time) (bool, error) {
	n, err := r.exec(ctx, `UPDATE oidc_auth_requests SET status = ?, person_id = ?, subject = ?, amr = ?, auth_time = ?
		WHERE id = ? AND status = 'pending' AND expires_at > ?`,
		string(status), a.PersonID, a.Subject, strings.Join(a.AMR, " "), us(a.AuthTime), requestID, us(now))
	if err != nil || n != 1 {
		return false, err
	}
	if status == pairing.SignInConfirmed {
		if _, err := r.exec(ctx, `UPDATE oidc_subjects SET signed_in_at = ? WHERE person_id = ?`, us(now), a.PersonID); err != nil {
			return false, err
		}
	}
	return true, nil
}

// SubjectOf inserts candidate unless the person has a subject, then reads
// the one stored: concurrent first sign-ins agree on one subject.
func (r repo) SubjectOf(ctx context.Context, personID int64, candidate string, now time.Time) (string, error) {
	var subject string
	err := r.queryOne(ctx, r.r, `SELECT subject FROM oidc_subjects WHERE person_id = ?`, []any{personID}, &subject)
	if err == nil {
		return subject, nil
	}
	if _, err := r.exec(ctx, `INSERT INTO oidc_subjects (person_id, subject, created_at) VALUES (?, ?, ?) ON CONFLICT (person_id) DO NOTHING`,
		personID, candidate, us(now)); err != nil {
		return "", err
	}
	err = r.queryOne(ctx, r.w, `SELECT subject FROM oidc_subjects WHERE person_id = ?`, []any{personID}, &subject)
	return subject, err
}

func (r repo) PersonBySubject(ctx context.Context, subject string) (int64, time.Time, error) {
	var personID, signedInAt int64
	if err := r.queryOne(ctx, r.r, `SELECT person_id, signed_in_at FROM oidc_subjects WHERE subject = ?`, []any{subject}, &personID, &signedInAt); err != nil {
		return 0, time.Time{}, err
	}
	return personID, tm(signedInAt), nil
}

func splitWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}
