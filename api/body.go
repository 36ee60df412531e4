package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

const (
	ctxBody = "pairingd.body"
	// maxJSONDepth is the deepest nesting accepted; our bodies are flat,
	// so anything deep is an attack on the parser.
	maxJSONDepth = 32
)

// readBody reads a /v1 request body once, within the size limit, and
// refuses what is not one strict JSON object. The bytes are kept for the
// OpenAPI validator and the handler.
func (s *server) readBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength == 0 {
			return errBodyRequired
		}
		if !isJSON(r.Header.Get(echo.HeaderContentType)) {
			return errMediaType
		}
		if r.ContentLength > s.cfg.BodyLimit {
			return errTooLarge
		}
		data, err := io.ReadAll(http.MaxBytesReader(c.Response().Writer, r.Body, s.cfg.BodyLimit))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return errTooLarge
		case err != nil:
			return invalidRequest("The request body could not be read.")
		case len(data) == 0:
			return errBodyRequired
		}
		if err := checkJSON(data); err != nil {
			return err
		}
		c.Set(ctxBody, data)
		r.Body = io.NopCloser(bytes.NewReader(data))
		return next(c)
	}
}

// isJSON accepts application/json with at most a UTF-8 charset.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// checkJSON accepts exactly one JSON object in valid UTF-8, with no
// duplicate keys in any object, no nesting deeper than maxJSONDepth and
// nothing after it. encoding/json alone would take the last of duplicate
// keys and replace invalid UTF-8, so what the validator saw could differ
// from what a handler reads.
func checkJSON(data []byte) error {
	if !utf8.Valid(data) {
		return invalidRequest("The request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return errBodyRequired
	case err != nil:
		return errNotJSON
	case tok != json.Delim('{'):
		return invalidRequest("The request body must be a JSON object.")
	}
	// One frame per open object or array; the decoder checks the syntax,
	// this walk checks keys and depth.
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	stack := []*frame{{keys: map[string]bool{}, wantKey: true}}
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return errNotJSON
		}
		top := stack[len(stack)-1]
		if top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return invalidRequest("The request body repeats a key; each key may appear once.")
			}
			top.keys[k], top.wantKey = true, false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxJSONDepth {
				return invalidRequest("The request body is nested too deeply.")
			}
			f := &frame{}
			if tok == json.Delim('{') {
				f.keys, f.wantKey = map[string]bool{}, true
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidRequest("The request body has data after the JSON object.")
	}
	return nil
}

// decodeBody decodes a checked body into dst, a pointer to a struct whose
// JSON tags are the only keys accepted, matched exactly (encoding/json
// alone matches keys case-insensitively).
func decodeBody(data []byte, dst any) error {
	if err := checkJSON(data); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return errNotJSON
	}
	known := jsonFields(dst)
	for k := range raw {
		if !known[k] {
			return fieldsError(map[string]string{safeFieldName(k): "is not a known field"})
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fieldsError(map[string]string{safeFieldName(te.Field): "must be a " + jsonTypeName(te.Type)})
		}
		return invalidRequest("The request body does not match the expected fields.")
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string]bool

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[name] = true
		}
	}
	fieldCache.Store(t, m)
	return m
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

// safeFieldName bounds a client-chosen key before it is echoed back.
func safeFieldName(k string) string {
	if len(k) > 64 || !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "(unknown field)"
	}
	return k
}

// body returns the bytes readBody kept.
func body(c echo.Context) []byte {
	b, _ := c.Get(ctxBody).([]byte)
	return b
}
