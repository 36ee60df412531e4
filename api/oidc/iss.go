package oidc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
)

// RFC 9207: every authorization response carries iss, error responses
// too, so a relying party that talks to several providers can tell which
// one answered (mix-up attacks). The sign-in pages add it to codes
// themselves; op's error redirects (and the page's cancel, which uses
// op's error response) get it here, and discovery says so.

// issParamSupported is the discovery key of RFC 9207, section 3.
const issParamSupported = "authorization_response_iss_parameter_supported"

// withIssOnErrors adds iss to every error redirect next writes.
func (p *Provider) withIssOnErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&issWriter{ResponseWriter: w, iss: p.issuer}, r)
	})
}

type issWriter struct {
	http.ResponseWriter
	iss  string
	done bool
}

func (w *issWriter) WriteHeader(code int) {
	if !w.done && code >= 300 && code < 400 {
		if loc := w.Header().Get("Location"); loc != "" {
			w.Header().Set("Location", withIss(loc, w.iss))
		}
	}
	w.done = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *issWriter) Write(b []byte) (int, error) {
	w.done = true
	return w.ResponseWriter.Write(b)
}

// withIss adds iss to an error redirect (a query with error and no iss);
// anything else is left as it is.
func withIss(loc, iss string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	if q.Get("error") == "" || q.Has("iss") {
		return loc
	}
	q.Set("iss", iss)
	u.RawQuery = q.Encode()
	return u.String()
}

// discovery is op's discovery document with the RFC 9207 key added; op's
// headers (CORS, content type) are kept.
func (p *Provider) discovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(body, &doc); err == nil {
				doc[issParamSupported] = json.RawMessage("true")
				if b, err := json.Marshal(doc); err == nil {
					body = b
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = bytes.NewReader(body).WriteTo(w)
	})
}
