package fbfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
)

// Sign returns the X-Hub-Signature-256 value Meta sends for body:
// "sha256=" + hex HMAC-SHA256(app secret, raw body).
func Sign(appSecret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SignedRequest builds a webhook delivery to /webhooks/messenger signed
// with appSecret, ready for a handler's ServeHTTP.
func SignedRequest(appSecret string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/messenger", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Hub-Signature-256", Sign(appSecret, body))
	return r
}

// Entry is one entry of a delivery: the Page and its events.
type Entry struct {
	PageID    string
	Messaging []map[string]any
	Standby   []map[string]any
}

// Body builds a delivery body {"object":"page","entry":[...]}.
func Body(entries ...Entry) []byte {
	var es []map[string]any
	for _, e := range entries {
		m := map[string]any{"id": e.PageID, "time": nextTimestamp()}
		if e.Messaging != nil {
			m["messaging"] = withRecipient(e.PageID, e.Messaging)
		}
		if e.Standby != nil {
			m["standby"] = withRecipient(e.PageID, e.Standby)
		}
		es = append(es, m)
	}
	b, _ := json.Marshal(map[string]any{"object": "page", "entry": es})
	return b
}

func withRecipient(pageID string, items []map[string]any) []map[string]any {
	for _, it := range items {
		if _, ok := it["recipient"]; !ok {
			it["recipient"] = map[string]string{"id": pageID}
		}
	}
	return items
}

// Delivery is Body with one Page and its messaging events.
func Delivery(pageID string, events ...map[string]any) []byte {
	return Body(Entry{PageID: pageID, Messaging: events})
}

var clock atomic.Int64

// nextTimestamp gives every built event its own millisecond timestamp, so
// events without a message id are not taken for duplicates.
func nextTimestamp() int64 { return 1_700_000_000_000 + clock.Add(1) }

func event(psid string, key string, value any) map[string]any {
	return map[string]any{"sender": map[string]string{"id": psid}, "timestamp": nextTimestamp(), key: value}
}

// Text is a text message event.
func Text(psid, mid, text string) map[string]any {
	return event(psid, "message", map[string]any{"mid": mid, "text": text})
}

// QuickReplyEvent is a tap on a quick reply.
func QuickReplyEvent(psid, mid, text, payload string) map[string]any {
	return event(psid, "message", map[string]any{"mid": mid, "text": text, "quick_reply": map[string]string{"payload": payload}})
}

// Postback is a tap on a postback button or menu item.
func Postback(psid, payload string) map[string]any {
	return event(psid, "postback", map[string]any{"title": payload, "payload": payload})
}

// Referral is an m.me link with ref opened in an existing thread.
func Referral(psid, ref string) map[string]any {
	return event(psid, "referral", map[string]any{"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"})
}

// AccountLinked is the account linking webhook after a successful login.
func AccountLinked(psid, authorizationCode string) map[string]any {
	return event(psid, "account_linking", map[string]any{"status": "linked", "authorization_code": authorizationCode})
}

// AccountUnlinked is the account linking webhook after "Log out".
func AccountUnlinked(psid string) map[string]any {
	return event(psid, "account_linking", map[string]any{"status": "unlinked"})
}

// PassThread is a pass_thread_control handover event.
func PassThread(psid, newOwner, previousOwner string) map[string]any {
	return event(psid, "pass_thread_control", map[string]any{"new_owner_app_id": newOwner, "previous_owner_app_id": previousOwner, "metadata": "fbfake"})
}

// TakeThread is a take_thread_control handover event.
func TakeThread(psid, newOwner, previousOwner string) map[string]any {
	return event(psid, "take_thread_control", map[string]any{"new_owner_app_id": newOwner, "previous_owner_app_id": previousOwner, "metadata": "fbfake"})
}

// RequestThread is a request_thread_control handover event.
func RequestThread(psid, requestedOwner string) map[string]any {
	return event(psid, "request_thread_control", map[string]any{"requested_owner_app_id": json.Number(requestedOwner), "metadata": "fbfake"})
}

// AppRoles is an app_roles event: app id -> roles.
func AppRoles(roles map[string][]string) map[string]any {
	return map[string]any{"timestamp": nextTimestamp(), "app_roles": roles}
}
