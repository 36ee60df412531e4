package fbfake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func call(t *testing.T, method, rawURL string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, rawURL, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errorOf(t *testing.T, out map[string]any) (code, subcode float64) {
	t.Helper()
	e, ok := out["error"].(map[string]any)
	if !ok || e["type"] != "OAuthException" || e["fbtrace_id"] == "" || e["message"] == "" {
		t.Fatalf("not Meta's error shape: %v", out)
	}
	sub, _ := e["error_subcode"].(float64)
	return e["code"].(float64), sub
}

func TestAuthAndErrorShape(t *testing.T) {
	s := New(t)
	s.AddPage("1", "tok", "sec")
	q := func(token, proofValue string) string {
		return s.URL() + "/me/messages?" + url.Values{"access_token": {token}, "appsecret_proof": {proofValue}}.Encode()
	}
	msg := map[string]any{"recipient": map[string]string{"id": "9"}, "messaging_type": "RESPONSE", "message": map[string]string{"text": "hi"}}

	if st, out := call(t, "POST", q("other", proof("sec", "other")), msg); st != 400 {
		t.Fatal(st)
	} else if c, _ := errorOf(t, out); c != 190 {
		t.Fatalf("unknown token: %v", c)
	}
	if _, out := call(t, "POST", q("tok", "wrong"), msg); out["error"] == nil {
		t.Fatal("bad proof accepted")
	}
	if st, out := call(t, "POST", q("tok", proof("sec", "tok")), msg); st != 200 || out["message_id"] == nil {
		t.Fatalf("good call: %d %v", st, out)
	}
	s.FailNext(10, 2018278)
	if _, out := call(t, "POST", q("tok", proof("sec", "tok")), msg); true {
		if c, sub := errorOf(t, out); c != 10 || sub != 2018278 {
			t.Fatalf("FailNext: %v %v", c, sub)
		}
	}
	s.FailNext(2, 0)
	if st, _ := call(t, "POST", q("tok", proof("sec", "tok")), msg); st != 500 {
		t.Fatalf("code 2 status %d", st)
	}
	four := map[string]any{"recipient": map[string]string{"id": "9"}, "messaging_type": "RESPONSE", "message": map[string]any{"attachment": map[string]any{
		"type": "template", "payload": map[string]any{"template_type": "button", "text": "t", "buttons": []map[string]string{
			{"type": "postback", "title": "a", "payload": "a"}, {"type": "postback", "title": "b", "payload": "b"},
			{"type": "postback", "title": "c", "payload": "c"}, {"type": "postback", "title": "d", "payload": "d"}}}}}}
	if _, out := call(t, "POST", q("tok", proof("sec", "tok")), four); out["error"] == nil {
		t.Fatal("four buttons accepted")
	}
	if sent := s.Sent(); len(sent) != 1 || sent[0].PageID != "1" || sent[0].Text != "hi" {
		t.Fatalf("sent %+v", sent)
	}
	for _, r := range s.Requests() {
		if r.Query.Get("access_token") != "REDACTED" || r.Query.Get("appsecret_proof") != "REDACTED" {
			t.Fatal("Requests keeps secrets")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.WaitSent(ctx, 2); err == nil {
		t.Fatal("WaitSent did not time out")
	}
}

func TestLookups(t *testing.T) {
	s := New(t)
	s.SetAccountLinkingToken("alt", "55")
	s.SetIDsForPages("77", map[string]string{"1": "55"})
	s.SetProfile("55", Profile{FirstName: "A", Locale: "fr_FR"})
	base := s.URL()
	if _, out := call(t, "GET", base+"/me?fields=recipient&account_linking_token=alt&access_token=x", nil); out["recipient"] != "55" {
		t.Fatalf("linking %v", out)
	}
	if _, out := call(t, "GET", base+"/me?fields=recipient&account_linking_token=nope&access_token=x", nil); out["error"] == nil {
		t.Fatal("unknown token")
	}
	if _, out := call(t, "GET", base+"/77/ids_for_pages?access_token=x", nil); len(out["data"].([]any)) != 1 {
		t.Fatalf("ids %v", out)
	}
	if _, out := call(t, "GET", base+"/55?fields=first_name,last_name,locale&access_token=x", nil); out["locale"] != "fr_FR" {
		t.Fatalf("profile %v", out)
	}
	if _, out := call(t, "GET", base+"/55", nil); out["error"] == nil {
		t.Fatal("no token accepted")
	}
}
