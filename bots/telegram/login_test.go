package telegram

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pairingd/pairingd/bots/telegram/tgfake"
)

// signed is login data as Telegram gives it for the test bot at `at`.
func signed(at time.Time, mod func(url.Values)) url.Values {
	q := url.Values{"id": {"4242"}, "first_name": {"Ann"}, "last_name": {"Lee"}, "username": {"ann"},
		"photo_url": {"https://t.me/i/userpic/320/ann.jpg"}, "auth_date": {strconv.FormatInt(at.Unix(), 10)}}
	if mod != nil {
		mod(q)
	}
	q.Set("hash", tgfake.SignLogin(token, q))
	return q
}

func TestCheckLoginData(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		q    url.Values
		want error
	}{
		{"valid", signed(now.Add(-time.Minute), nil), nil},
		{"only the required fields", signed(now, func(q url.Values) {
			q.Del("first_name")
			q.Del("last_name")
			q.Del("username")
			q.Del("photo_url")
		}), nil},
		{"a field Telegram adds later is signed too", signed(now, func(q url.Values) { q.Set("allows_write_to_pm", "true") }), nil},
		{"tampered id", func() url.Values { q := signed(now, nil); q.Set("id", "4243"); return q }(), ErrLoginInvalid},
		{"tampered name", func() url.Values { q := signed(now, nil); q.Set("first_name", "Eve"); return q }(), ErrLoginInvalid},
		{"added field", func() url.Values { q := signed(now, nil); q.Set("x", "1"); return q }(), ErrLoginInvalid},
		{"dropped field", func() url.Values { q := signed(now, nil); q.Del("username"); return q }(), ErrLoginInvalid},
		{"another bot's token", func() url.Values {
			q := signed(now, nil)
			q.Set("hash", tgfake.SignLogin("1:other", q))
			return q
		}(), ErrLoginInvalid},
		{"hash too short", func() url.Values { q := signed(now, nil); q.Set("hash", "AB"); return q }(), ErrLoginInvalid},
		// The right hash in capitals: the one-tap page spends a login by
		// its hash's text, so a second spelling would be a second use.
		{"hash in capitals", func() url.Values { q := signed(now, nil); q.Set("hash", strings.ToUpper(q.Get("hash"))); return q }(), ErrLoginInvalid},
		{"no hash", func() url.Values { q := signed(now, nil); q.Del("hash"); return q }(), ErrLoginInvalid},
		{"no id", signed(now, func(q url.Values) { q.Del("id") }), ErrLoginInvalid},
		{"id not a number", signed(now, func(q url.Values) { q.Set("id", "ann") }), ErrLoginInvalid},
		{"negative id", signed(now, func(q url.Values) { q.Set("id", "-5") }), ErrLoginInvalid},
		{"no auth_date", signed(now, func(q url.Values) { q.Del("auth_date") }), ErrLoginInvalid},
		{"auth_date not a number", signed(now, func(q url.Values) { q.Set("auth_date", "yesterday") }), ErrLoginInvalid},
		{"a field twice", func() url.Values { q := signed(now, nil); q.Add("id", "4242"); return q }(), ErrLoginInvalid},
		{"empty", url.Values{}, ErrLoginInvalid},
		{"stale", signed(now.Add(-LoginMaxAge-time.Second), nil), ErrLoginStale},
		{"just in time", signed(now.Add(-LoginMaxAge), nil), nil},
		{"our clock a little behind", signed(now.Add(LoginClockSkew), nil), nil},
		{"from the future", signed(now.Add(LoginClockSkew+time.Second), nil), ErrLoginStale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := CheckLoginData(token, tc.q, now, LoginMaxAge)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && d.ID != 4242 {
				t.Fatalf("id %d", d.ID)
			}
			if err != nil && (strings.Contains(err.Error(), token) || len(tc.q.Get("hash")) > 8 && strings.Contains(err.Error(), tc.q.Get("hash"))) {
				t.Fatalf("the error carries the data: %v", err)
			}
		})
	}
}

func TestLoginCheckerUsesItsClock(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c := NewLoginChecker(token, fixedClock(now), 0)
	if id, err := c.CheckLogin(signed(now, nil)); err != nil || id != "4242" {
		t.Fatalf("got %q %v", id, err)
	}
	if _, err := c.CheckLogin(signed(now.Add(-time.Hour), nil)); !errors.Is(err, ErrLoginStale) {
		t.Fatalf("an hour old: %v", err)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// FuzzCheckLoginData: any query parses without a panic, and only data
// signed with the token passes.
func FuzzCheckLoginData(f *testing.F) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f.Add(signed(now, nil).Encode())
	f.Add("id=1&auth_date=1&hash=00")
	f.Add("hash=" + string(make([]byte, 64)))
	f.Add("id=1&id=2")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		d, err := CheckLoginData(token, q, now, LoginMaxAge)
		if err != nil {
			if !errors.Is(err, ErrLoginInvalid) && !errors.Is(err, ErrLoginStale) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if q.Get("hash") != tgfake.SignLogin(token, q) || d.ID <= 0 {
			t.Fatalf("accepted data that is not signed: %q", raw)
		}
	})
}
