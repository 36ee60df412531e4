package telegram

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/pairingd/pairingd/api/errorshape"
	"github.com/pairingd/pairingd/bots/channel"
	"github.com/pairingd/pairingd/pairing"
)

// secretHeader carries the webhook's secret_token on every delivery.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// maxWebhookBody bounds one delivery: one update.
const maxWebhookBody = 1 << 20

// WebhookHandler serves POST WebhookPath(name) in webhook mode. It refuses
// a delivery without the right secret token (401), an oversized body
// (413) and a body that is not an update (400), then stores the update in
// the inbound queue and answers 200 as soon as it is committed; the
// inbound worker handles it (see inbound.go), so a slow or failing Bot
// API never delays the answer. The queue's unique update_id per channel
// is the dedupe. Only a database failure answers 500, so Telegram
// delivers the update again. In polling mode it answers 404.
func (b *Bot) WebhookHandler() http.Handler {
	want := sha256.Sum256([]byte(b.secret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if b.cfg.Mode != ModeWebhook {
			errorshape.Write(w, http.StatusNotFound, errorshape.NotFound, "This channel takes no webhooks (polling mode).")
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			errorshape.Write(w, http.StatusMethodNotAllowed, errorshape.MethodNotAllowed, "This route does not take this method; see the Allow header.")
			return
		}
		got := sha256.Sum256([]byte(r.Header.Get(secretHeader)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			b.log.Warn("webhook request without the right secret token refused", "channel", b.cfg.Name)
			errorshape.Write(w, http.StatusUnauthorized, errorshape.Unauthorized, "The webhook secret token is missing or wrong.")
			return
		}
		body, ok := channel.ReadWebhookBody(w, r, maxWebhookBody)
		if !ok {
			return
		}
		u, err := parseUpdate(body)
		if err != nil {
			b.log.Warn("webhook body is not a Telegram update", "channel", b.cfg.Name, "err", err)
			errorshape.Write(w, http.StatusBadRequest, errorshape.InvalidRequest, "The request body is not a Telegram update.")
			return
		}
		if err := b.intake.Accept(r.Context(), []pairing.InboundEvent{b.inboundEvent(u, body)}); err != nil {
			b.log.Error("webhook update not stored; Telegram will retry", "channel", b.cfg.Name, "update_id", u.id(), "err", err)
			errorshape.Write(w, http.StatusInternalServerError, errorshape.Internal, "The delivery could not be stored; deliver it again later.")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
