package tgfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// SetLoginDomain is BotFather's /setdomain: from now on a message with a
// login_url button to another host is refused with BOT_DOMAIN_INVALID, as
// Telegram does. Without it every login_url is taken.
func (s *Server) SetLoginDomain(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginDomain = host
}

func (s *Server) checkLoginButtonsLocked(kb *tgbotapi.InlineKeyboardMarkup) *apiError {
	if kb == nil || s.loginDomain == "" {
		return nil
	}
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			if b.LoginURL == nil {
				continue
			}
			u, err := url.Parse(b.LoginURL.URL)
			if err != nil || u.Hostname() != s.loginDomain {
				return badRequest("BOT_DOMAIN_INVALID")
			}
		}
	}
	return nil
}

// LoginData is what Telegram appends to a login_url when the user chatID
// presses the button at `at`: the user's fields, auth_date and hash, the
// HMAC-SHA256 keyed with SHA-256 of the bot token over the sorted
// "key=value" lines. Empty names are left out, as Telegram does.
func (s *Server) LoginData(chatID int64, firstName, username string, at time.Time) url.Values {
	q := url.Values{"id": {strconv.FormatInt(chatID, 10)}, "auth_date": {strconv.FormatInt(at.Unix(), 10)}}
	if firstName != "" {
		q.Set("first_name", firstName)
	}
	if username != "" {
		q.Set("username", username)
	}
	q.Set("hash", SignLogin(s.token, q))
	return q
}

// SignLogin is the hash Telegram gives login data q (its hash field
// ignored) for the bot of token.
func SignLogin(token string, q url.Values) string {
	var lines []string
	for k, vs := range q {
		if k == "hash" || len(vs) == 0 {
			continue
		}
		lines = append(lines, k+"="+vs[0])
	}
	sort.Strings(lines)
	key := sha256.Sum256([]byte(token))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}
