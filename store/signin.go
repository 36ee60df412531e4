package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pairingd/pairingd/pairing"
)

// The domain side of sign-in (migration 0012): the request's status, its
// chat tokens and the persons' subjects. The protocol side is oidc.go.

var _ pairing.SignInStore = (*Store)(nil)

type signInTokenRow struct {
	ID        int64  `gorm:"column:id;primaryKey"`
	Hash      []byte `gorm:"column:hash"`
	RequestID string `gorm:"column:request_id"`
	Channel   string `gorm:"column:channel"`
	ExpiresAt int64  `gorm:"column:expires_at"`
	UsedAt    int64  `gorm:"column:used_at"`
	LeadID    int64  `gorm:"column:lead_id"`
	CreatedAt int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (signInTokenRow) TableName() string { return "signin_tokens" }

type subjectRow struct {
	PersonID   int64  `gorm:"column:person_id;primaryKey;autoIncrement:false"`
	Subject    string `gorm:"column:subject"`
	SignedInAt int64  `gorm:"column:signed_in_at"`
	CreatedAt  int64  `gorm:"column:created_at;autoCreateTime:false"`
}

func (subjectRow) TableName() string { return "oidc_subjects" }

// SignInRequest reads the domain's view of an authorization request, with
// the client's name.
func (r repo) SignInRequest(ctx context.Context, id string) (pairing.SignInRequest, error) {
	var row authRequestRow
	if err := take(ctx, r.r, &row, "id = ?", id); err != nil {
		return pairing.SignInRequest{}, err
	}
	var c clientRow
	if err := take(ctx, r.r, &c, "id = ?", row.ClientID); err != nil {
		return pairing.SignInRequest{}, err
	}
	return pairing.SignInRequest{
		ID: row.ID, ClientID: row.ClientID, ClientName: c.Name, MatchCode: row.MatchCode,
		Status: pairing.SignInStatus(row.Status), PersonID: row.PersonID, Subject: row.Subject,
		AMR: splitWords(row.AMR), AuthTime: tm(row.AuthTime), ExpiresAt: tm(row.ExpiresAt),
	}, nil
}

func (r repo) AddSignInTokens(ctx context.Context, requestID, matchCode string, toks []pairing.SignInToken) (string, error) {
	var code string
	err := r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE oidc_auth_requests SET match_code = ? WHERE id = ? AND match_code = ''`, matchCode, requestID).Error; err != nil {
			return err
		}
		for _, t := range toks {
			row := signInTokenRow{Hash: t.Hash, RequestID: t.RequestID, Channel: t.Channel, ExpiresAt: us(t.ExpiresAt), CreatedAt: us(t.CreatedAt)}
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
		}
		return tx.Raw(`SELECT match_code FROM oidc_auth_requests WHERE id = ?`, requestID).Scan(&code).Error
	})
	return code, translate(err)
}

func (r repo) SignInTokenByHash(ctx context.Context, hash []byte) (pairing.SignInToken, error) {
	var row signInTokenRow
	if err := take(ctx, r.r, &row, "hash = ?", hash); err != nil {
		return pairing.SignInToken{}, err
	}
	return pairing.SignInToken{
		ID: row.ID, Hash: row.Hash, RequestID: row.RequestID, Channel: row.Channel,
		ExpiresAt: tm(row.ExpiresAt), UsedAt: tm(row.UsedAt), CreatedAt: tm(row.CreatedAt),
	}, nil
}

// FinishSignIn: the request's conditional UPDATE (still pending, not
// expired) decides between concurrent answers; the token is spent in the
// same transaction.
func (r repo) FinishSignIn(ctx context.Context, tokenID, leadID int64, requestID string, status pairing.SignInStatus, auth pairing.SignInAuth, now time.Time) (bool, error) {
	won := false
	err := r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE signin_tokens SET used_at = ?, lead_id = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`, us(now), leadID, tokenID, us(now))
		if res.Error != nil || res.RowsAffected != 1 {
			return res.Error
		}
		ok, err := authenticate(tx, requestID, status, auth, now)
		if err != nil || !ok {
			return err
		}
		won = true
		return nil
	})
	if err != nil {
		return false, translate(err)
	}
	return won, nil
}

func (r repo) AuthenticateSignIn(ctx context.Context, requestID string, auth pairing.SignInAuth, now time.Time) (bool, error) {
	won := false
	err := r.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		won, err = authenticate(tx, requestID, pairing.SignInConfirmed, auth, now)
		return err
	})
	return won, translate(err)
}

// authenticate moves a pending, unexpired request to status and, on a
// confirmation, stamps the subject's last sign-in (the window of
// POST /v1/links/oidc).
func authenticate(tx *gorm.DB, requestID string, status pairing.SignInStatus, a pairing.SignInAuth, now time.Time) (bool, error) {
	res := tx.Exec(`UPDATE oidc_auth_requests SET status = ?, person_id = ?, subject = ?, amr = ?, auth_time = ?
		WHERE id = ? AND status = 'pending' AND expires_at > ?`,
		string(status), a.PersonID, a.Subject, strings.Join(a.AMR, " "), us(a.AuthTime), requestID, us(now))
	if res.Error != nil || res.RowsAffected != 1 {
		return false, res.Error
	}
	if status == pairing.SignInConfirmed {
		if err := tx.Exec(`UPDATE oidc_subjects SET signed_in_at = ? WHERE person_id = ?`, us(now), a.PersonID).Error; err != nil {
			return false, err
		}
	}
	return true, nil
}

// SubjectOf inserts candidate unless the person has a subject, then reads
// the one stored: concurrent first sign-ins agree on one subject.
func (r repo) SubjectOf(ctx context.Context, personID int64, candidate string, now time.Time) (string, error) {
	var row subjectRow
	err := take(ctx, r.r, &row, "person_id = ?", personID)
	if err == nil {
		return row.Subject, nil
	}
	if err := r.w.WithContext(ctx).Exec(`INSERT INTO oidc_subjects (person_id, subject, created_at) VALUES (?, ?, ?) ON CONFLICT (person_id) DO NOTHING`,
		personID, candidate, us(now)).Error; err != nil {
		return "", translate(err)
	}
	if err := take(ctx, r.w, &row, "person_id = ?", personID); err != nil {
		return "", err
	}
	return row.Subject, nil
}

func (r repo) PersonBySubject(ctx context.Context, subject string) (int64, time.Time, error) {
	var row subjectRow
	if err := take(ctx, r.r, &row, "subject = ?", subject); err != nil {
		return 0, time.Time{}, err
	}
	return row.PersonID, tm(row.SignedInAt), nil
}

func splitWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}
