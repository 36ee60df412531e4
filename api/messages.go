package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// Notifications by site user id: POST /v1/users/{user_id}/messages queues,
// GET /v1/messages/{id} shows where each delivery stands.

type notifyBody struct {
	Text     string           `json:"text"`
	Buttons  []pairing.Button `json:"buttons"`
	Channels []string         `json:"channels"`
}

type deliveryJSON struct {
	Channel       string `json:"channel"`
	Status        string `json:"status"`
	Attempts      int    `json:"attempts"`
	LastError     string `json:"last_error,omitempty"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
	FinishedAt    string `json:"finished_at,omitempty"`
}

type messageJSON struct {
	ID         int64          `json:"id"`
	UserID     string         `json:"user_id"`
	CreatedAt  string         `json:"created_at"`
	Deliveries []deliveryJSON `json:"deliveries"`
}

// headerReplayed marks an answer that is the stored answer of an earlier
// request with the same Idempotency-Key.
const headerReplayed = "Idempotent-Replayed"

func (s *server) notify(c echo.Context) error {
	userID, err := userIDParam(c)
	if err != nil {
		return err
	}
	var in notifyBody
	if err := decodeBody(body(c), &in); err != nil {
		return err
	}
	m, err := s.svc.Notify(c.Request().Context(), pairing.NotifyRequest{
		UserID: userID, Text: in.Text, Buttons: in.Buttons, Channels: in.Channels,
		IdempotencyKey: c.Request().Header.Get("Idempotency-Key"), KeyID: keyID(c),
	})
	if err != nil {
		return err
	}
	if m.Replayed {
		c.Response().Header().Set(headerReplayed, "true")
	}
	return c.JSON(http.StatusAccepted, messageOf(m))
}

func (s *server) getMessage(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return fieldsError(map[string]string{"id": "must be a positive integer"})
	}
	m, err := s.svc.Message(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, messageOf(m))
}

func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func messageOf(m pairing.Message) messageJSON {
	out := messageJSON{ID: m.ID, UserID: m.UserID, CreatedAt: timeJSON(m.CreatedAt), Deliveries: []deliveryJSON{}}
	for _, d := range m.Deliveries {
		dj := deliveryJSON{Channel: d.Channel, Status: string(d.Status), Attempts: d.Attempts, LastError: d.LastError,
			CreatedAt: optTime(d.CreatedAt), UpdatedAt: optTime(d.UpdatedAt), FinishedAt: optTime(d.FinishedAt)}
		if d.Status == pairing.DeliveryQueued {
			dj.NextAttemptAt = optTime(d.NextAttemptAt)
		}
		out.Deliveries = append(out.Deliveries, dj)
	}
	return out
}
