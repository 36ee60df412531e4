// Package errorshape writes pairingd's one error shape,
// {"error": {"code": ..., "message": ..., "request_id": ...}} (the Error
// schema of api/openapi.yaml), for the handlers that answer outside the
// REST API's error handler: the platforms' webhooks. The platforms ignore
// the body, but whoever reads it (an operator with curl, a log of a proxy)
// gets the same shape as from every other route.
package errorshape

import (
	"encoding/json"
	"net/http"
)

// Codes the webhooks answer with; each is in the Error schema's enum.
const (
	InvalidRequest   = "invalid_request"
	Unauthorized     = "unauthorized"
	Forbidden        = "forbidden"
	NotFound         = "not_found"
	MethodNotAllowed = "method_not_allowed"
	PayloadTooLarge  = "payload_too_large"
	Internal         = "internal"
)

type body struct {
	Error detail `json:"error"`
}

type detail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// Write answers status with the error object. The request id is the one
// the API's middleware set on the answer (X-Request-Id), if any. message
// is for a developer and must hold no request data.
func Write(w http.ResponseWriter, status int, code, message string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	b, err := json.Marshal(body{Error: detail{Code: code, Message: message, RequestID: h.Get("X-Request-Id")}})
	if err != nil { // three strings always encode
		b = []byte(`{"error":{"code":"internal","message":"error not encodable"}}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
