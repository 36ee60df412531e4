package telegram

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"

	"github.com/pairingd/pairingd/bots/channel"
)

// The parts of a Telegram Update the adapter reads. The adapter decodes
// updates into these rather than tgbotapi.Update: a field Telegram changes
// in a later Bot API version cannot make a whole getUpdates batch
// undecodable, and unknown fields are ignored.

type update struct {
	ID            *int64             `json:"update_id"`
	Message       *message           `json:"message"`
	CallbackQuery *callbackQuery     `json:"callback_query"`
	MyChatMember  *chatMemberUpdated `json:"my_chat_member"`

	// kind names the update for logs: its first key besides update_id.
	kind string
}

type user struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Username     string `json:"username"`
	LanguageCode string `json:"language_code"`
}

type chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

type message struct {
	MessageID int64  `json:"message_id"`
	From      *user  `json:"from"`
	Chat      *chat  `json:"chat"`
	Text      string `json:"text"`
}

type callbackQuery struct {
	ID      string   `json:"id"`
	From    *user    `json:"from"`
	Message *message `json:"message"`
	Data    string   `json:"data"`
}

type chatMember struct {
	Status string `json:"status"`
}

type chatMemberUpdated struct {
	Chat          chat       `json:"chat"`
	From          *user      `json:"from"`
	NewChatMember chatMember `json:"new_chat_member"`
}

// allowedUpdates are the update kinds the bot asks Telegram for, as the
// JSON list the allowed_updates parameter takes.
const allowedUpdates = `["message","callback_query","my_chat_member"]`

var errNoUpdateID = errors.New("telegram: update without update_id")

// parseUpdate decodes one update (a webhook body, or one element of a
// getUpdates result). It fails on anything that is not a JSON object with
// an integer update_id; every other field is optional.
func parseUpdate(body []byte) (update, error) {
	var u update
	if err := json.Unmarshal(body, &u); err != nil {
		return update{}, err
	}
	if u.ID == nil {
		return update{}, errNoUpdateID
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return update{}, err
	}
	names := make([]string, 0, len(keys))
	for k, v := range keys {
		if k != "" && k != "update_id" && string(v) != "null" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	u.kind = "empty"
	if len(names) > 0 {
		u.kind = channel.Truncate(names[0], 40)
	}
	return u, nil
}

// id is the update's update_id (parseUpdate guarantees one).
func (u update) id() int64 { return *u.ID }

// dedupeKey names the update in the inbound queue: unique per bot.
func (u update) dedupeKey() string { return strconv.FormatInt(u.id(), 10) }

// chatID is the private or group chat the update belongs to, 0 when none:
// updates of one chat are handled in order.
func (u update) chatID() int64 {
	switch {
	case u.Message != nil && u.Message.Chat != nil:
		return u.Message.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.Message != nil && u.CallbackQuery.Message.Chat != nil:
		return u.CallbackQuery.Message.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.From != nil:
		return u.CallbackQuery.From.ID
	case u.MyChatMember != nil:
		return u.MyChatMember.Chat.ID
	}
	return 0
}
