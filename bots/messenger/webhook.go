package messenger

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
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
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
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
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, challenge)
}

// receive checks the signature over the raw body, then handles every
// event, each at most once. Any failure answers 500 after releasing the
// failed events' dedupe marks, so Meta's retry handles exactly them.
func (h *Hub) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	secret, ok := h.checkSignature(r.Header.Get("X-Hub-Signature-256"), body)
	if !ok {
		h.log.Warn("webhook signature refused")
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	object, events, err := parseWebhook(body)
	if err != nil {
		h.log.Warn("webhook body is not a Messenger event", "err", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if object != "page" {
		h.log.Debug("webhook object ignored", "object", truncate(object, 32))
		writeOK(w)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	if err := h.dispatch(ctx, secret, events); err != nil {
		http.Error(w, "temporary failure, retry", http.StatusInternalServerError)
		return
	}
	writeOK(w)
}

func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "EVENT_RECEIVED")
}

// checkSignature verifies X-Hub-Signature-256 = "sha256=" + hex
// HMAC-SHA256(app secret, raw body) against each configured app secret,
// in constant time, and returns the secret that signed.
func (h *Hub) checkSignature(header string, body []byte) (string, bool) {
	hexSig, found := strings.CutPrefix(header, "sha256=")
	if !found || len(hexSig) != 2*sha256.Size {
		return "", false
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return "", false
	}
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

// dispatch handles the events of one delivery. Events of one person run in
// order; different people run side by side, a few at a time.
func (h *Hub) dispatch(ctx context.Context, secret string, events []event) error {
	type group struct {
		p      *page
		events []event
	}
	var order []string
	groups := map[string]*group{}
	for _, ev := range events {
		p, ok := h.byID[ev.PageID]
		if !ok {
			h.log.Warn("webhook entry for an unknown page ignored", "page_id", truncate(ev.PageID, 32))
			continue
		}
		// A delivery signed by one app may not speak for another app's Page.
		if p.cfg.AppSecret != secret {
			h.log.Warn("webhook entry signed by another app ignored", "channel", p.cfg.Name)
			continue
		}
		gk := ev.PageID + "\x00" + ev.psid()
		g, ok := groups[gk]
		if !ok {
			g = &group{p: p}
			groups[gk] = g
			order = append(order, gk)
		}
		g.events = append(g.events, ev)
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
		sem    = make(chan struct{}, h.parallel)
	)
	for _, gk := range order {
		g := groups[gk]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, ev := range g.events {
				if err := h.handleOnce(ctx, g.p, ev); err != nil {
					mu.Lock()
					failed = errors.Join(failed, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failed
}

// handleOnce claims the event in the dedupe table, handles it, and
// releases the claim if handling failed. A panic in a handler is a
// failure, not a crash.
func (h *Hub) handleOnce(ctx context.Context, p *page, ev event) (err error) {
	key := ev.dedupeKey()
	first, err := h.dedupe.FirstSeen(ctx, dedupeSource, key)
	if err != nil {
		h.log.Error("webhook dedupe", "channel", p.cfg.Name, "err", err)
		return err
	}
	if !first {
		h.log.Debug("duplicate event skipped", "channel", p.cfg.Name, "kind", ev.kind())
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("messenger: handler panicked")
		}
		if err == nil {
			return
		}
		h.log.Error("webhook event failed; Meta will retry", "channel", p.cfg.Name, "kind", ev.kind(), "err", err)
		// The claim must go even when the delivery's deadline passed.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if ferr := h.dedupe.Forget(fctx, dedupeSource, key); ferr != nil {
			h.log.Error("webhook dedupe release", "channel", p.cfg.Name, "err", ferr)
		}
	}()
	return h.handle(ctx, p, ev)
}
