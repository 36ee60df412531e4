package tgfake

import (
	"net/url"
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

// LoginURL is raw (a login_url button's url) with the signed data of p
// pressing it at time at added to its query, as Telegram opens it.
func (s *Server) LoginURL(raw string, p Person, at time.Time) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, vs := range s.LoginData(p.ID, p.FirstName, p.Username, at) {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
