package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/pairingd/pairingd/pairing"
)

// eventsJSON answers GET /v1/events: a page of events in id order, the
// cursor for the next call, and whether more are waiting.
type eventsJSON struct {
	Events  []pairing.EventJSON `json:"events"`
	Next    int64               `json:"next"`
	HasMore bool                `json:"has_more"`
}

// listEvents is GET /v1/events?after=&limit= for sites that poll instead
// of (or besides) receiving the webhook. openapi.yaml has checked the
// parameters' types and ranges already.
func (s *server) listEvents(c echo.Context) error {
	after, err := queryInt(c, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", pairing.DefaultEventPage)
	if err != nil {
		return err
	}
	evs, next, more, err := s.svc.SiteEvents(c.Request().Context(), after, int(limit))
	if err != nil {
		return err
	}
	out := eventsJSON{Events: make([]pairing.EventJSON, len(evs)), Next: next, HasMore: more}
	for i, e := range evs {
		out.Events[i] = pairing.EventOf(e)
	}
	return c.JSON(http.StatusOK, out)
}

func queryInt(c echo.Context, name string, def int64) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fieldsError(map[string]string{name: "must be an integer"})
	}
	return n, nil
}
