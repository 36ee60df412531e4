package telegram

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pairingd/pairingd/pairing"
)

// Telegram's one-tap sign-in: a login_url button opens the hosted page
// with the user's data signed by Telegram (the same data as the Login
// Widget): id, first_name, last_name, username, photo_url, auth_date and
// hash, where hash is the hex HMAC-SHA256, keyed with SHA-256 of the bot
// token, of the other fields as sorted "key=value" lines joined by "\n".

// Login check defaults.
const (
	// LoginMaxAge is how old auth_date may be: Telegram signs when the
	// button is pressed, so a few minutes cover a slow page load.
	LoginMaxAge = 5 * time.Minute
	// LoginClockSkew is how far in the future auth_date may be (our clock
	// behind Telegram's).
	LoginClockSkew = 30 * time.Second
	// maxLoginQuery bounds the data checked: names, a photo URL, a hash.
	maxLoginQuery = 16
	maxLoginValue = 1024
)

// Refusals of CheckLoginData. Neither carries any of the data.
var (
	ErrLoginInvalid = errors.New("telegram login data: invalid")
	ErrLoginStale   = errors.New("telegram login data: auth_date too old or in the future")
)

// LoginData is the user Telegram vouched for.
type LoginData struct {
	ID        int64
	FirstName string
	LastName  string
	Username  string
	PhotoURL  string
	AuthDate  time.Time
}

// CheckLoginData checks Telegram's signed login data against the bot's
// token and the clock: every field once, id, auth_date and hash present,
// the hash right, auth_date within maxAge before now (and at most
// LoginClockSkew after it). A refusal wraps ErrLoginInvalid or
// ErrLoginStale.
func CheckLoginData(token string, q url.Values, now time.Time, maxAge time.Duration) (LoginData, error) {
	if len(q) == 0 || len(q) > maxLoginQuery {
		return LoginData{}, fmt.Errorf("%w: %d fields", ErrLoginInvalid, len(q))
	}
	var lines []string
	var sum []byte
	for k, vs := range q {
		if len(vs) != 1 || len(vs[0]) > maxLoginValue || k == "" || strings.ContainsAny(k, "=\n") {
			return LoginData{}, fmt.Errorf("%w: field given twice, empty or too long", ErrLoginInvalid)
		}
		if k == "hash" {
			// Lowercase only, as Telegram writes it: one signed login has
			// one spelling, and the one-tap page spends that spelling once
			// (the same hash in capitals would be a second use).
			h, err := hex.DecodeString(vs[0])
			if err != nil || len(h) != sha256.Size || hex.EncodeToString(h) != vs[0] {
				return LoginData{}, fmt.Errorf("%w: hash is not 64 lowercase hex digits", ErrLoginInvalid)
			}
			sum = h
			continue
		}
		lines = append(lines, k+"="+vs[0])
	}
	if sum == nil {
		return LoginData{}, fmt.Errorf("%w: no hash", ErrLoginInvalid)
	}
	sort.Strings(lines)
	key := sha256.Sum256([]byte(token))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(strings.Join(lines, "\n")))
	if !hmac.Equal(m.Sum(nil), sum) {
		return LoginData{}, fmt.Errorf("%w: hash does not match", ErrLoginInvalid)
	}
	id, err := strconv.ParseInt(q.Get("id"), 10, 64)
	if err != nil || id <= 0 {
		return LoginData{}, fmt.Errorf("%w: id", ErrLoginInvalid)
	}
	sec, err := strconv.ParseInt(q.Get("auth_date"), 10, 64)
	if err != nil || sec <= 0 {
		return LoginData{}, fmt.Errorf("%w: auth_date", ErrLoginInvalid)
	}
	at := time.Unix(sec, 0)
	if now.Sub(at) > maxAge || at.Sub(now) > LoginClockSkew {
		return LoginData{}, ErrLoginStale
	}
	return LoginData{
		ID: id, FirstName: clean(q.Get("first_name"), 128), LastName: clean(q.Get("last_name"), 128),
		Username: clean(q.Get("username"), 64), PhotoURL: q.Get("photo_url"), AuthDate: at.UTC(),
	}, nil
}

// LoginChecker checks the login data of one bot; its CheckLogin returns
// the private chat's id (Telegram's user id is the id of the user's
// private chat with the bot), the lead's external id.
type LoginChecker struct {
	token  string
	clock  pairing.Clock
	maxAge time.Duration
}

// NewLoginChecker checks data signed for the bot of token; a nil clock
// is the system clock, a zero maxAge LoginMaxAge.
func NewLoginChecker(token string, clock pairing.Clock, maxAge time.Duration) *LoginChecker {
	if clock == nil {
		clock = pairing.SystemClock{}
	}
	if maxAge <= 0 {
		maxAge = LoginMaxAge
	}
	return &LoginChecker{token: token, clock: clock, maxAge: maxAge}
}

// CheckLogin checks q and returns the chat's external id.
func (c *LoginChecker) CheckLogin(q url.Values) (string, error) {
	d, err := CheckLoginData(c.token, q, c.clock.Now(), c.maxAge)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(d.ID, 10), nil
}
