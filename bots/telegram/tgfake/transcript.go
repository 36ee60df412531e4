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
)

// entry is one line of a chat as a client shows it: a text the person
// sent, or a message of the bot (shown with its latest edit).
type entry struct {
	seq       int
	user      bool
	text      string // the person's text
	messageID int    // the bot's message
}

// recordLocked appends to a chat's transcript. Callers hold s.mu.
func (s *Server) recordLocked(chat int64, e entry) {
	e.seq = len(s.transcript[chat]) + 1
	s.transcript[chat] = append(s.transcript[chat], e)
	s.versions[chat]++
}

// ChatItem is one line of a private chat: what the person sent (Text),
// or the bot's message as it reads now (Bot, after any edit).
type ChatItem struct {
	FromPerson bool
	Text       string
	Bot        SentMessage
}

// Transcript is the chat with chatID as a Telegram client shows it, oldest
// first.
func (s *Server) Transcript(chatID int64) []ChatItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transcriptLocked(chatID)
}

func (s *Server) transcriptLocked(chatID int64) []ChatItem {
	var out []ChatItem
	for _, e := range s.transcript[chatID] {
		if e.user {
			out = append(out, ChatItem{FromPerson: true, Text: e.text})
			continue
		}
		out = append(out, ChatItem{Bot: s.messages[chatID][e.messageID]})
	}
	return out
}

// ChatVersion counts the changes to a chat (messages sent or edited); a
// client that saw version v has nothing new while it is still v.
func (s *Server) ChatVersion(chatID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versions[chatID]
}

// SignLogin is the query Telegram adds to a login_url when person p
// presses the button at time at: id, names, username, auth_date, and hash,
// the hex HMAC-SHA256 keyed with SHA-256 of the bot token over the other
// fields as sorted "key=value" lines joined by "\n" (Telegram's "Checking
// authorization"). Empty fields are left out, as Telegram does.
func (s *Server) SignLogin(p Person, at time.Time) url.Values {
	v := url.Values{}
	v.Set("id", strconv.FormatInt(p.ID, 10))
	v.Set("auth_date", strconv.FormatInt(at.Unix(), 10))
	for k, val := range map[string]string{"first_name": p.FirstName, "last_name": p.LastName, "username": p.Username} {
		if val != "" {
			v.Set(k, val)
		}
	}
	v.Set("hash", LoginHash(s.token, v))
	return v
}

// LoginHash is the hash of login_url data v (its "hash" field ignored)
// for the bot token.
func LoginHash(token string, v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k != "hash" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + v.Get(k)
	}
	secret := sha256.Sum256([]byte(token))
	mac := hmac.New(sha256.New, secret[:])
	mac.Write([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(mac.Sum(nil))
}

// LoginURL is raw (a login_url button's url) with the signed data of p
// pressing it at time at added to its query, as Telegram opens it.
func (s *Server) LoginURL(raw string, p Person, at time.Time) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, vs := range s.SignLogin(p, at) {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
