package messenger

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Meta's reference examples, made valid JSON where the page shows
// placeholders, each wrapped as a delivery for page A.
var docExamples = map[string]struct {
	item string
	kind string
	ref  string
}{
	// messaging_postbacks: the reference shows string timestamps and a
	// referral inside the postback.
	"postback with referral": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":"1527459824",
		"postback":{"mid":"m_MESSAGE-ID","title":"TITLE-FOR-THE-CTA","payload":"GET_STARTED",
		"referral":{"ref":"USER-DEFINED-REFERRAL-PARAM","source":"SHORT-URL","type":"OPEN_THREAD"}}}`, kindPostback, "USER-DEFINED-REFERRAL-PARAM"},
	"referral m.me": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"referral":{"ref":"REF_DATA","source":"SHORTLINK","type":"OPEN_THREAD"}}`, kindReferral, "REF_DATA"},
	"referral ad": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"referral":{"ref":"AD_REF","ad_id":"6045246247433","source":"ADS","type":"OPEN_THREAD",
		"ads_context_data":{"ad_title":"t","photo_url":"https://x/p.jpg","video_url":"https://x/v.jpg","post_id":"1","product_id":"2","flow_id":"3"}}}`, kindReferral, "AD_REF"},
	"optin checkbox": {`{"recipient":{"id":"111000111"},"timestamp":1234567890,
		"optin":{"ref":"PASS_THROUGH_PARAM","user_ref":"UNIQUE_REF_PARAM"}}`, kindOptin, ""},
	"optin notification messages": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"optin":{"type":"notification_messages","payload":"ADDITIONAL-INFORMATION","notification_messages_token":"NOTIFICATION-MESSAGES-TOKEN",
		"notification_messages_frequency":"DAILY","notification_messages_timezone":"America/Los_Angeles","token_expiry_timestamp":1234567890,"user_token_status":"NOT_REFRESHED"}}`, kindOptin, ""},
	"account linked": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1234567890,
		"account_linking":{"status":"linked","authorization_code":"PASS_THROUGH_AUTHORIZATION_CODE"}}`, kindAccountLinking, ""},
	"account unlinked": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1234567890,"account_linking":{"status":"unlinked"}}`, kindAccountLinking, ""},
	"pass thread from idle": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"pass_thread_control":{"previous_owner_app_id":null,"new_owner_app_id":"123456789","metadata":"Additional content"}}`, kindPassThread, ""},
	"take thread": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"take_thread_control":{"previous_owner_app_id":"123456789","new_owner_app_id":987654321,"metadata":"x"}}`, kindTakeThread, ""},
	"request thread": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"request_thread_control":{"requested_owner_app_id":123456789,"metadata":"additional content"}}`, kindRequestThread, ""},
	"app roles": {`{"recipient":{"id":"111000111"},"timestamp":1458692752478,"app_roles":{"123456789":["primary_receiver"]}}`, kindAppRoles, ""},
	"quick reply": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"message":{"mid":"m_1457764197618:41d102a3e1ae206a38","text":"hello, world!","quick_reply":{"payload":"STATUS"}}}`, kindMessage, ""},
	"message reply_to and attachments": {`{"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":1458692752478,
		"message":{"mid":"m_2","text":"hi","reply_to":{"mid":"m_1"},"attachments":[{"type":"image","payload":{"url":"https://x/i.png"}}]}}`, kindMessage, ""},
}

func TestDocExamplesParse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, ex := range docExamples {
		t.Run(name, func(t *testing.T) {
			body := []byte(`{"object":"page","entry":[{"id":"111000111","time":1458692752478,"messaging":[` + ex.item + `]}]}`)
			_, evs, err := parseWebhook(body)
			if err != nil || len(evs) != 1 {
				t.Fatalf("%v (%d events)", err, len(evs))
			}
			if got := evs[0].kind(); got != ex.kind {
				t.Fatalf("kind %q, want %q", got, ex.kind)
			}
			if ex.ref != "" {
				r := evs[0].Item.Referral
				if evs[0].Item.Postback != nil {
					r = evs[0].Item.Postback.Referral
				}
				if r == nil || r.Ref != ex.ref {
					t.Fatalf("referral %+v", r)
				}
			}
			if rec := e.post(secretA, body); rec.Code != http.StatusOK {
				t.Fatalf("handler: %d", rec.Code)
			}
		})
	}
}

// The dashboard's "Test" button and the reference pages use the
// {"field","value"} form.
func TestChangesFormParses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := []byte(`{"object":"page","entry":[{"id":"111000111","time":1,"changes":[{"field":"messaging_postbacks","value":{
		"sender":{"id":"5001"},"recipient":{"id":"111000111"},"timestamp":"1527459824",
		"postback":{"mid":"m_MESSAGE-ID","title":"T","payload":"GET_STARTED","referral":{"ref":"R","source":"SHORT-URL","type":"OPEN_THREAD"}}}}]}]}`)
	_, evs, err := parseWebhook(body)
	if err != nil || len(evs) != 1 || evs[0].kind() != kindPostback || evs[0].Item.Timestamp != "1527459824" {
		t.Fatalf("%v %+v", err, evs)
	}
	if rec := e.post(secretA, body); rec.Code != 200 || e.last().Text != e.text("en", "messenger_deeplink_unknown") {
		t.Fatalf("%d", rec.Code)
	}
}

func TestDedupeKeys(t *testing.T) {
	t.Parallel()
	mk := func(item string, standby bool) event {
		_, evs, err := parseWebhook([]byte(`{"object":"page","entry":[{"id":"111","messaging":[` + item + `]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		evs[0].Standby = standby
		return evs[0]
	}
	msg := `{"sender":{"id":"5"},"timestamp":7,"message":{"mid":"m.1","text":"x"}}`
	pb := `{"sender":{"id":"5"},"timestamp":7,"postback":{"payload":"X"}}`
	if k := mk(msg, false).dedupeKey(); k != "message:mid:m.1" {
		t.Fatal(k)
	}
	if mk(msg, true).dedupeKey() == mk(msg, false).dedupeKey() {
		t.Fatal("standby and messaging share a key")
	}
	if k := mk(pb, false).dedupeKey(); k != "postback:111:5:7" {
		t.Fatal(k)
	}
	if mk(pb, false).dedupeKey() == mk(`{"sender":{"id":"5"},"timestamp":8,"postback":{"payload":"X"}}`, false).dedupeKey() {
		t.Fatal("different timestamps share a key")
	}
}

// The seed corpus exists and covers Meta's examples.
func TestFuzzCorpusPresent(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/fuzz/FuzzParseWebhook/*")
	if err != nil || len(files) < 10 {
		t.Fatalf("seed corpus: %d files, %v", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n") {
			t.Fatalf("%s: not a corpus file", f)
		}
	}
}
