package messenger

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net/http"
	"strings"

	"github.com/pairingd/pairingd/api/errorshape"
	"github.com/pairingd/pairingd/bots/channel"
)

// WebhookPath is the one route serving every Page.
const WebhookPath = "/webhooks/messenger"

// maxWebhookBody bounds a webhook delivery.
const maxWebhookBody = 1 << 20

// WebhookHandler serves WebhookPath: GET for Meta's subscription check,
// POST for event deliveries.
func (h *Hub) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.Method {
		case http.MethodGet:
			h.verifySubscription(w, r)
		case http.MethodPost:
			h.receive(w, r)
		default:
			w.Header().Set("Allow", "GET, POST")
			errorshape.Write(w, http.StatusMethodNotAllowed, errorshape.MethodNotAllowed, "This route does not take this method; see the Allow header.")
		}
	})
}

// verifySubscription answers hub.challenge when hub.mode is subscribe and
// hub.verify_token is one Page's verify token.
func (h *Hub) verifySubscription(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token, challenge := q.Get("hub.verify_token"), q.Get("hub.challenge")
	ok := false
	for _, p := range h.pages {
		if subtle.ConstantTimeCompare([]byte(token), []byte(p.cfg.VerifyToken)) == 1 {
			ok = true
		}
	}
	if q.Get("hub.mode") != "subscribe" || !ok || challenge == "" || len(challenge) > 256 {
		h.log.Warn("webhook verification refused")
		errorshape.Write(w, http.StatusForbidden, errorshape.Forbidden, "The subscription check's mode, verify token or challenge is wrong.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, challenge)
}

// receive checks the signature over the raw body, then stores every
// event of the delivery in the inbound queue in one transaction and
// answers 200 as soon as it is committed: the events are handled later by
// the inbound worker (see inbound.go), so a slow or failing Graph API
// never delays the answer. Only a database failure answers 500, so that
// Meta delivers again; the queue's unique (source, key) makes a
// redelivered event a no-op.
func (h *Hub) receive(w http.ResponseWriter, r *http.Request) {
	// A delivery without a well-formed signature can never pass: refuse it
	// before spending memory and time on its body.
	sig, ok := parseSignature(r.Header.Get("X-Hub-Signature-256"))
	if !ok {
		h.log.Warn("webhook without a well-formed signature refused")
		errorshape.Write(w, http.StatusForbidden, errorshape.Forbidden, "X-Hub-Signature-256 is missing or malformed.")
		return
	}
	body, ok := channel.ReadWebhookBody(w, r, maxWebhookBody)
	if !ok {
		return
	}
	secret, ok := h.checkSignature(sig, body)
	if !ok {
		h.log.Warn("webhook signature refused")
		errorshape.Write(w, http.StatusForbidden, errorshape.Forbidden, "X-Hub-Signature-256 does not verify.")
		return
	}
	object, events, err := parseWebhook(body)
	if err != nil {
		h.log.Warn("webhook body is not a Messenger event", "err", err)
		errorshape.Write(w, http.StatusBadRequest, errorshape.InvalidRequest, "The request body is not a Messenger webhook event.")
		return
	}
	if object != "page" {
		h.log.Debug("webhook object ignored", "object", channel.Truncate(object, 32))
		writeOK(w)
		return
	}
	if err := h.inbox.Accept(r.Context(), h.inboundEvents(secret, events)); err != nil {
		h.log.Error("webhook delivery not stored; Meta will retry", "err", err)
		errorshape.Write(w, http.StatusInternalServerError, errorshape.Internal, "The delivery could not be stored; deliver it again later.")
		return
	}
	writeOK(w)
}

func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "EVENT_RECEIVED")
}

// parseSignature reads X-Hub-Signature-256: "sha256=" + the hex of a
// SHA-256 HMAC.
func parseSignature(header string) ([]byte, bool) {
	hexSig, found := strings.CutPrefix(header, "sha256=")
	if !found || len(hexSig) != 2*sha256.Size {
		return nil, false
	}
	sig, err := hex.DecodeString(hexSig)
	return sig, err == nil
}

// checkSignature verifies the signature = HMAC-SHA256(app secret, raw
// body) against each configured app secret, in constant time, and returns
// the secret that signed.
func (h *Hub) checkSignature(sig, body []byte) (string, bool) {
	match := ""
	for _, p := range h.pages {
		m := hmac.New(sha256.New, []byte(p.cfg.AppSecret))
		m.Write(body)
		if hmac.Equal(sig, m.Sum(nil)) && match == "" {
			match = p.cfg.AppSecret
		}
	}
	return match, match != ""
}
