package fbfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"
)

// writeError answers with Meta's error shape. Codes 1 and 2 are server
// errors (500); everything else is 400, as Graph mostly does.
func (s *Server) writeError(w http.ResponseWriter, code, subcode int, msg string) {
	if msg == "" {
		msg = defaultMessage(code, subcode)
	}
	s.mu.Lock()
	s.trace++
	trace := fmt.Sprintf("AfakeTrace%04d", s.trace)
	s.mu.Unlock()
	status := http.StatusBadRequest
	if code == 1 || code == 2 {
		status = http.StatusInternalServerError
	}
	e := map[string]any{"message": msg, "type": "OAuthException", "code": code, "fbtrace_id": trace}
	if subcode != 0 {
		e["error_subcode"] = subcode
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func defaultMessage(code, subcode int) string {
	switch {
	case code == 551:
		return "(#551) This person isn't available right now."
	case code == 200 && subcode == 1545041:
		return "(#200) Message Not Sent: This person isn't available right now."
	case code == 10 && subcode == 2018108:
		return "(#10) This person isn't receiving messages from you right now."
	case code == 10 && subcode == 2018278:
		return "(#10) This message is sent outside of allowed window."
	case subcode == 2018300:
		return "(#10) Another app is controlling this thread now."
	case code == 613:
		return "(#613) Calls to this api have exceeded the rate limit."
	case code == 4:
		return "(#4) Application request limit reached"
	case code == 1 || code == 2:
		return "An unexpected error has occurred. Please retry your request later."
	case code == 190:
		return "Invalid OAuth access token - Cannot parse access token"
	case code == 100:
		return "(#100) Invalid parameter"
	}
	return fmt.Sprintf("(#%d) An error occurred", code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var tags = map[string]bool{
	"ACCOUNT_UPDATE": true, "CONFIRMED_EVENT_UPDATE": true, "POST_PURCHASE_UPDATE": true,
	"HUMAN_AGENT": true, "CUSTOMER_FEEDBACK": true,
}

type sendBody struct {
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	MessagingType string `json:"messaging_type"`
	Tag           string `json:"tag"`
	Message       *struct {
		Text       string `json:"text"`
		Attachment *struct {
			Type    string `json:"type"`
			Payload struct {
				TemplateType string   `json:"template_type"`
				Text         string   `json:"text"`
				Buttons      []Button `json:"buttons"`
			} `json:"payload"`
		} `json:"attachment"`
		QuickReplies []QuickReply `json:"quick_replies"`
	} `json:"message"`
}

// send is the Send API: it validates the message against Messenger's
// rules and records it.
func (s *Server) send(w http.ResponseWriter, r *http.Request, pg page) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var b sendBody
	if err != nil || json.Unmarshal(raw, &b) != nil {
		s.writeError(w, 100, 0, "(#100) The parameter message must be JSON")
		return
	}
	if msg := validateSend(b); msg != "" {
		s.writeError(w, 100, 0, "(#100) "+msg)
		return
	}
	s.mu.Lock()
	closed := s.closed[b.Recipient.ID]
	s.mu.Unlock()
	if closed && b.MessagingType != "MESSAGE_TAG" {
		s.writeError(w, 10, 2018278, "")
		return
	}
	m := SentMessage{PageID: pg.id, RecipientID: b.Recipient.ID, MessagingType: b.MessagingType, Tag: b.Tag,
		Text: b.Message.Text, QuickReplies: b.Message.QuickReplies, Raw: raw}
	if a := b.Message.Attachment; a != nil {
		m.Text, m.Buttons = a.Payload.Text, a.Payload.Buttons
	}
	s.mu.Lock()
	s.sent = append(s.sent, m)
	n := len(s.sent)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"recipient_id": b.Recipient.ID, "message_id": "m_fake" + strconv.Itoa(n)})
}

// validateSend returns what Graph would object to, or "".
func validateSend(b sendBody) string {
	switch {
	case b.Recipient.ID == "":
		return "param recipient[id] must be non-empty"
	case b.MessagingType != "RESPONSE" && b.MessagingType != "UPDATE" && b.MessagingType != "MESSAGE_TAG":
		return "param messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG"
	case b.MessagingType == "MESSAGE_TAG" && !tags[b.Tag]:
		return "param tag must be a valid message tag"
	case b.Message == nil:
		return "param message must be non-empty"
	case (b.Message.Text == "") == (b.Message.Attachment == nil):
		return "message must have either text or attachment"
	case utf8.RuneCountInString(b.Message.Text) > 2000:
		return "param message[text] must be UTF-8 encoded with a 2000 character limit"
	case len(b.Message.QuickReplies) > 13:
		return "param message[quick_replies] must have at most 13 elements"
	}
	for _, q := range b.Message.QuickReplies {
		if q.ContentType == "text" && (q.Title == "" || utf8.RuneCountInString(q.Title) > 20 || q.Payload == "" || len(q.Payload) > 1000) {
			return "quick reply title must be 1..20 characters and payload 1..1000"
		}
	}
	a := b.Message.Attachment
	if a == nil {
		return ""
	}
	if a.Type != "template" || a.Payload.TemplateType != "button" {
		return "only button templates are faked"
	}
	p := a.Payload
	if p.Text == "" || utf8.RuneCountInString(p.Text) > 640 {
		return "param message[attachment][payload][text] must be 1..640 characters"
	}
	if len(p.Buttons) == 0 || len(p.Buttons) > 3 {
		return "a button template has 1..3 buttons"
	}
	for _, bt := range p.Buttons {
		switch bt.Type {
		case "web_url":
			if u, err := url.Parse(bt.URL); err != nil || u.Host == "" || bt.Title == "" || utf8.RuneCountInString(bt.Title) > 20 {
				return "web_url button needs a url and a title of 1..20 characters"
			}
		case "postback":
			if bt.Title == "" || utf8.RuneCountInString(bt.Title) > 20 || bt.Payload == "" {
				return "postback button needs a title of 1..20 characters and a payload"
			}
		case "account_link":
			if u, err := url.Parse(bt.URL); err != nil || u.Host == "" || bt.Title != "" {
				return "account_link button needs a url and no title"
			}
		case "account_unlink":
		default:
			return "unknown button type " + bt.Type
		}
	}
	return ""
}

func (s *Server) messengerProfile(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || !json.Valid(raw) {
		s.writeError(w, 100, 0, "(#100) body must be JSON")
		return
	}
	s.mu.Lock()
	s.msgProfiles = append(s.msgProfiles, raw)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"result": "success"})
}

func (s *Server) threadControl(w http.ResponseWriter, r *http.Request, pg page, ep Endpoint) {
	var b struct {
		Recipient struct {
			ID string `json:"id"`
		} `json:"recipient"`
		TargetAppID json.Number `json:"target_app_id"`
		Metadata    string      `json:"metadata"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil || b.Recipient.ID == "" {
		s.writeError(w, 100, 0, "(#100) param recipient[id] must be non-empty")
		return
	}
	call := ThreadCall{Kind: "request", PageID: pg.id, PSID: b.Recipient.ID, Metadata: b.Metadata}
	if ep == EndpointPassThread {
		if b.TargetAppID == "" {
			s.writeError(w, 100, 0, "(#100) param target_app_id must be non-empty")
			return
		}
		call.Kind, call.TargetAppID = "pass", b.TargetAppID.String()
	}
	s.mu.Lock()
	s.threads = append(s.threads, call)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func (s *Server) accountLinking(w http.ResponseWriter, q url.Values, pg page) {
	if q.Get("fields") != "recipient" || q.Get("account_linking_token") == "" {
		writeJSON(w, http.StatusOK, map[string]string{"id": pg.id})
		return
	}
	s.mu.Lock()
	lt, ok := s.linking[q.Get("account_linking_token")]
	s.mu.Unlock()
	if !ok || lt.pageID != "" && lt.pageID != pg.id {
		s.writeError(w, 100, 0, "(#100) Invalid account_linking_token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": pg.id, "recipient": lt.psid})
}

func (s *Server) idsForPages(w http.ResponseWriter, id string) {
	s.mu.Lock()
	byPage, ok := s.ids[id]
	s.mu.Unlock()
	if !ok {
		s.writeError(w, 100, 33, fmt.Sprintf("Unsupported get request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", id))
		return
	}
	data := []map[string]any{}
	for pageID, psid := range byPage {
		data = append(data, map[string]any{"id": psid, "page": map[string]string{"id": pageID, "name": "Page " + pageID}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func (s *Server) userProfile(w http.ResponseWriter, psid string) {
	s.mu.Lock()
	p := s.profiles[psid]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Profile
		ID string `json:"id"`
	}{p, psid})
}
