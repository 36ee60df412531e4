package channel

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/pairingd/pairingd/api/errorshape"
)

// ReadWebhookBody reads a webhook delivery of at most limit bytes into one
// buffer sized from its declared length, so a body costs its own size in
// memory and not the doubling of a growing slice. When it cannot, it
// answers 413 (too large) or 400 and returns false.
func ReadWebhookBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	size := int64(bytes.MinRead)
	if r.ContentLength > 0 {
		size += min(r.ContentLength, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		errorshape.Write(w, http.StatusRequestEntityTooLarge, errorshape.PayloadTooLarge, "The request body is larger than this webhook accepts.")
	case err != nil:
		errorshape.Write(w, http.StatusBadRequest, errorshape.InvalidRequest, "The request body could not be read.")
	default:
		return buf.Bytes(), true
	}
	return nil, false
}
