package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestListEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.link("site-7")
	if r := e.do(http.MethodDelete, "/v1/links/site-7", ""); r.status != 200 {
		t.Fatalf("unlink %d %s", r.status, r.raw)
	}
	// Fresh events are held back for 2 seconds (late commits on PostgreSQL).
	r := e.do(http.MethodGet, "/v1/events", "")
	if r.status != 200 || r.raw != `{"events":[],"next":0,"has_more":true}`+"\n" {
		t.Fatalf("before settling: %d %s", r.status, r.raw)
	}
	e.clock.Advance(3 * time.Second)
	evs := e.store.SiteEvents()
	if len(evs) != 2 {
		t.Fatalf("%d events in the store", len(evs))
	}
	created, deleted := evs[0].ID, evs[1].ID
	person := p.Lead.PersonID
	want := fmt.Sprintf(`{"events":[`+
		`{"id":%d,"type":"link.created","created_at":"2026-11-23T10:00:00Z","user_id":"site-7","data":{"by":"site","channel":"telegram","person_id":%d}},`+
		`{"id":%d,"type":"link.deleted","created_at":"2026-11-23T10:00:00Z","user_id":"site-7","data":{"by":"site","person_id":%d}}`+
		`],"next":%d,"has_more":false}`+"\n", created, person, deleted, person, deleted)
	if r := e.do(http.MethodGet, "/v1/events", ""); r.status != 200 || r.raw != want {
		t.Fatalf("events:\n got %d %s\nwant %s", r.status, r.raw, want)
	}
	// Paging with the cursor.
	r = e.do(http.MethodGet, "/v1/events?limit=1", "")
	if r.status != 200 || r.body["next"] != float64(created) || r.body["has_more"] != true || len(r.body["events"].([]any)) != 1 {
		t.Fatalf("page 1: %s", r.raw)
	}
	r = e.do(http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=1", created), "")
	if r.status != 200 || r.body["next"] != float64(deleted) || len(r.body["events"].([]any)) != 1 {
		t.Fatalf("page 2: %s", r.raw)
	}
	r = e.do(http.MethodGet, fmt.Sprintf("/v1/events?after=%d", deleted), "")
	if r.status != 200 || r.raw != fmt.Sprintf(`{"events":[],"next":%d,"has_more":false}`+"\n", deleted) {
		t.Fatalf("past the end: %s", r.raw)
	}
}

func TestListEventsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for q, field := range map[string]string{
		"after=-1": "after", "after=abc": "after", "after=1.5": "after", "after=99999999999999999999": "after",
		"limit=0": "limit", "limit=1001": "limit", "limit=x": "limit", "limit=": "limit",
	} {
		r := e.do(http.MethodGet, "/v1/events?"+q, "")
		expect(t, r, 400, "invalid_request")
		if f, _ := r.errField("fields").(map[string]any); f[field] == nil {
			t.Fatalf("%s: fields %v", q, r.errField("fields"))
		}
	}
	r := e.do(http.MethodGet, "/v1/events", "", header{"Authorization", ""})
	expect(t, r, 401, "unauthorized")
	r = e.do(http.MethodGet, "/v1/events?api_key="+e.key, "", header{"Authorization", ""})
	expect(t, r, 400, "invalid_request")
	r = e.do(http.MethodPost, "/v1/events", "{}")
	if r.status != 405 {
		t.Fatalf("POST: %d", r.status)
	}
}
