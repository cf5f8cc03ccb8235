package api

import (
	"net/http"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// Handler answers a route added with HandleAuthenticated: it writes a
// response and returns nil, or returns an error that the route answers
// with the error envelope.
type Handler func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// HandleAuthenticated adds a route ("METHOD /path") that any authenticated
// user may call, with the metrics, access log, panic recovery and
// authentication of the built-in routes. The caller is p; admin-only
// operations check p.IsAdmin themselves.
func (a *API) HandleAuthenticated(pattern string, h Handler) {
	a.route(pattern, authenticated, handlerFunc(h))
}

// ReadJSON decodes the request body into v with the checks of every route:
// the media type (415), the size limit (413), strict JSON naming the field
// at fault (400).
func (a *API) ReadJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return a.readJSON(w, r, v)
}

// ErrorOf returns the response err gets, as the built-in routes answer it:
// the error of the client's doing with its status and code, anything else
// a bare 500 whose details go to the log only (logged here).
func (a *API) ErrorOf(r *http.Request, err error) *Error {
	e := a.classify(err)
	switch {
	case e.Code == CodeStorageUnavailable:
		a.storageUnavailable(err)
	case e.Status >= 500 && e.Code != CodeNotReady:
		a.log.Error("request failed", withErr(err, "method", r.Method, "path", truncate(r.URL.Path, 256), "status", e.Status)...)
	}
	return e
}

// ReadJSONBody reads the request body with the checks of every route (the
// media type, 415; the size limit, 413) and calls f with it; data is valid
// only while f runs. f may decode data itself and hand it to DecodeJSON for
// what it does not handle.
func (a *API) ReadJSONBody(w http.ResponseWriter, r *http.Request, f func(data []byte) error) error {
	return a.readBody(w, r, f)
}

// DecodeJSON decodes data, a request body, strictly into v, with the checks
// and errors of ReadJSON.
func (a *API) DecodeJSON(data []byte, v any) error { return a.decodeJSON(data, v) }

// AppendJSONString appends s as a JSON string, as rows are written: without
// escaping '<', '>' and '&', invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendJSONFloat appends f as encoding/json formats it; NaN and the
// infinities, which JSON lacks, as null.
func AppendJSONFloat(dst []byte, f float64) []byte { return appendFloat(dst, f) }

// WriteJSONBody answers with body, a JSON document, and status.
func WriteJSONBody(w http.ResponseWriter, status int, body []byte) { writeRaw(w, status, body) }
