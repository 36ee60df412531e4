package messenger

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/pairingd/pairingd/bots/channel"
)

// The webhook body as Meta sends it. Only the fields the adapter uses are
// declared; anything else is ignored. Ids and timestamps are accepted as
// JSON strings or numbers, since Meta's own examples use both.

type webhookBody struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID        flexString      `json:"id"`
	Time      flexString      `json:"time"`
	Messaging []messagingItem `json:"messaging"`
	// Standby carries the events of threads another app owns.
	Standby []messagingItem `json:"standby"`
	// Changes is the {field, value} form the dashboard's test button and
	// the reference pages use.
	Changes []struct {
		Field string        `json:"field"`
		Value messagingItem `json:"value"`
	} `json:"changes"`
}

type messagingItem struct {
	Sender         party               `json:"sender"`
	Recipient      party               `json:"recipient"`
	Timestamp      flexString          `json:"timestamp"`
	Message        *inMessage          `json:"message"`
	Postback       *postback           `json:"postback"`
	Referral       *referral           `json:"referral"`
	Optin          *optin              `json:"optin"`
	AccountLinking *accountLinking     `json:"account_linking"`
	PassThread     *threadControl      `json:"pass_thread_control"`
	TakeThread     *threadControl      `json:"take_thread_control"`
	RequestThread  *threadControl      `json:"request_thread_control"`
	AppRoles       map[string][]string `json:"-"`

	// keys are the item's top-level keys, to name unknown kinds in logs.
	keys []string
	// raw is the item as received, stored in the inbound queue.
	raw json.RawMessage
}

// UnmarshalJSON decodes the known fields and remembers the keys. app_roles
// is decoded leniently: a malformed value is dropped, not an error.
func (m *messagingItem) UnmarshalJSON(b []byte) error {
	type plain messagingItem
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = messagingItem(p)
	m.raw = append(json.RawMessage(nil), b...)
	m.keys = m.keys[:0]
	for k := range raw {
		m.keys = append(m.keys, k)
	}
	sort.Strings(m.keys)
	if r, ok := raw["app_roles"]; ok {
		var roles map[string][]string
		if json.Unmarshal(r, &roles) == nil {
			m.AppRoles = roles
		}
	}
	return nil
}

type party struct {
	ID      flexString `json:"id"`
	UserRef string     `json:"user_ref"`
}

type inMessage struct {
	MID        string `json:"mid"`
	Text       string `json:"text"`
	IsEcho     bool   `json:"is_echo"`
	QuickReply *struct {
		Payload string `json:"payload"`
	} `json:"quick_reply"`
}

type postback struct {
	MID      string    `json:"mid"`
	Title    string    `json:"title"`
	Payload  string    `json:"payload"`
	Referral *referral `json:"referral"`
}

type referral struct {
	Ref    string `json:"ref"`
	Source string `json:"source"`
	Type   string `json:"type"`
}

type optin struct {
	Ref     string `json:"ref"`
	UserRef string `json:"user_ref"`
	Type    string `json:"type"`
}

type accountLinking struct {
	Status            string `json:"status"`
	AuthorizationCode string `json:"authorization_code"`
}

type threadControl struct {
	NewOwnerAppID       flexString `json:"new_owner_app_id"`
	PreviousOwnerAppID  flexString `json:"previous_owner_app_id"`
	RequestedOwnerAppID flexString `json:"requested_owner_app_id"`
	Metadata            string     `json:"metadata"`
}

// flexString is a JSON string, number, or null, kept as text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n.String())
	}
	return nil
}

// Event kinds, as named in logs and dedupe keys.
const (
	kindMessage        = "message"
	kindEcho           = "message_echo"
	kindPostback       = "postback"
	kindReferral       = "referral"
	kindOptin          = "optin"
	kindAccountLinking = "account_linking"
	kindPassThread     = "pass_thread_control"
	kindTakeThread     = "take_thread_control"
	kindRequestThread  = "request_thread_control"
	kindAppRoles       = "app_roles"
)

// event is one messaging item with where it came from.
type event struct {
	PageID  string
	Standby bool
	Item    messagingItem
}

func (e event) kind() string {
	it := e.Item
	switch {
	case it.Message != nil && it.Message.IsEcho:
		return kindEcho
	case it.Message != nil:
		return kindMessage
	case it.Postback != nil:
		return kindPostback
	case it.AccountLinking != nil:
		return kindAccountLinking
	case it.Referral != nil:
		return kindReferral
	case it.Optin != nil:
		return kindOptin
	case it.PassThread != nil:
		return kindPassThread
	case it.TakeThread != nil:
		return kindTakeThread
	case it.RequestThread != nil:
		return kindRequestThread
	case it.AppRoles != nil:
		return kindAppRoles
	}
	// Name it after its first key that is not common to every item, e.g.
	// "delivery", "read", "reaction".
	for _, k := range it.keys {
		switch k {
		case "sender", "recipient", "timestamp":
		default:
			return "unknown:" + channel.Truncate(k, 40)
		}
	}
	return "unknown"
}

func (e event) psid() string { return string(e.Item.Sender.ID) }

// dedupeKey names the event in the inbound queue, whose unique (source,
// key) drops Meta's redeliveries: the message id when there is one, else
// (kind, page, sender, timestamp).
func (e event) dedupeKey() string {
	prefix := ""
	if e.Standby {
		prefix = "standby:"
	}
	k := e.kind()
	mid := ""
	switch {
	case e.Item.Message != nil:
		mid = e.Item.Message.MID
	case e.Item.Postback != nil:
		mid = e.Item.Postback.MID
	}
	if mid != "" {
		return prefix + k + ":mid:" + channel.Truncate(mid, 200)
	}
	return prefix + k + ":" + channel.Truncate(e.PageID, 40) + ":" + channel.Truncate(e.psid(), 80) + ":" + channel.Truncate(string(e.Item.Timestamp), 40)
}

// parseWebhook decodes a (signature-checked) body and flattens it into
// events, in order: for each entry its messaging, then standby, then
// changes items.
func parseWebhook(body []byte) (object string, events []event, err error) {
	var wb webhookBody
	if err := json.Unmarshal(body, &wb); err != nil {
		return "", nil, err
	}
	for _, en := range wb.Entry {
		page := string(en.ID)
		for _, it := range en.Messaging {
			events = append(events, event{PageID: page, Item: it})
		}
		for _, it := range en.Standby {
			events = append(events, event{PageID: page, Standby: true, Item: it})
		}
		for _, ch := range en.Changes {
			if strings.HasPrefix(ch.Field, "standby") {
				events = append(events, event{PageID: page, Standby: true, Item: ch.Value})
				continue
			}
			events = append(events, event{PageID: page, Item: ch.Value})
		}
	}
	return wb.Object, events, nil
}

// validPSID accepts what a Page-scoped id looks like: digits.
func validPSID(s string) bool {
	return len(s) <= 64 && isDigits(s)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
