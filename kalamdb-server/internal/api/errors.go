package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"
)

// Error codes of the error envelope.
const (
	CodeBadRequest           = "BAD_REQUEST"
	CodeInvalidJSON          = "INVALID_JSON"
	CodeUnauthorized         = "UNAUTHORIZED"
	CodeForbidden            = "FORBIDDEN"
	CodeNotFound             = "NOT_FOUND"
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	CodeNotImplemented       = "NOT_IMPLEMENTED"
	CodeNotReady             = "NOT_READY"
	CodeInternal             = "INTERNAL"
	CodeStorageUnavailable   = "STORAGE_UNAVAILABLE"
	CodeRequestTimeout       = "REQUEST_TIMEOUT"
)

// Error is an error with its HTTP status and envelope code. Handlers return
// it for every outcome the client should see as such.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// envelope is the JSON body of every error response.
type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// withErr returns the log attributes attrs followed by err and, when err
// comes from a contained panic (package guard), its stack.
func withErr(err error, attrs ...any) []any {
	attrs = append(attrs, "err", err)
	if stack := guard.Stack(err); stack != nil {
		attrs = append(attrs, "stack", string(stack))
	}
	return attrs
}

// writeError answers with the envelope for err. Errors that are not the
// client's doing are logged and answered with a bare 500: their text never
// reaches the client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := a.classify(err)
	switch {
	case e.Code == CodeStorageUnavailable:
		a.storageUnavailable(err)
		w.Header().Set("Retry-After", "1")
	case e.Code == CodeNotReady:
		// Logged by readyz, once per change of state.
	case e.Status >= 500:
		a.log.Error("request failed", withErr(err, "method", r.Method, "path", truncate(r.URL.Path, 256), "status", e.Status)...)
	default:
		a.log.Debug("request refused", "method", r.Method, "path", truncate(r.URL.Path, 256), "status", e.Status, "code", e.Code)
	}
	writeJSON(w, e.Status, envelope{Error: envelopeBody{Code: e.Code, Message: e.Message}})
}

// classify maps any error to the response the client gets.
func (a *API) classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return a.tooLarge()
	}
	if errors.Is(err, objstore.ErrUnavailable) {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeStorageUnavailable,
			Message: "the object store of the Parquet segments cannot be reached now; retry later (a write that got this answer may or may not have been applied)"}
	}
	if errors.Is(err, store.ErrUnavailable) {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeStorageUnavailable,
			Message: fmt.Sprintf("storage backend %q cannot be reached now; retry later (a write that got this answer may or may not have been applied)", a.opts.Backend)}
	}
	if e := classifyDomain(err); e != nil {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; the server log has the details"}
}

func (a *API) tooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes (server.max_body_bytes)", a.opts.MaxBodyBytes)}
}

// classifyDomain maps the errors of the table layer; it is extended where
// that layer is wired in.
var classifyDomain = func(error) *Error { return nil }

// readJSON checks that r carries a JSON body no larger than the limit and
// decodes it strictly into v: unknown fields, a wrong type, trailing data,
// and whatever checkJSON refuses (invalid UTF-8, a member given twice, a
// member name in the wrong case) are 400s that name the field.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return a.readBody(w, r, func(data []byte) error { return a.decodeJSON(data, v) })
}

// readBody checks that r carries a JSON body no larger than the limit,
// reads it into a pooled buffer and calls f with it. data is valid only
// while f runs.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, f func(data []byte) error) error {
	if err := a.checkJSONBody(r); err != nil {
		return err
	}
	bp := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if bp.Cap() <= 1<<20 { // do not keep huge buffers
			bp.Reset()
			bodyPool.Put(bp)
		}
	}()
	if _, err := bp.ReadFrom(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)); err != nil {
		return a.bodyError(err)
	}
	return f(bp.Bytes())
}

// decodeJSON decodes data strictly into v, as readJSON does.
func (a *API) decodeJSON(data []byte, v any) error {
	if err := checkJSON(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return a.jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "request body has data after the JSON value"}
	}
	return nil
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// bodyError answers a request body that could not be read: too large
// (413), too slow (408), or cut off by the client (400). The message never
// carries the connection's addresses.
func (a *API) bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return a.tooLarge()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Status: http.StatusRequestTimeout, Code: CodeRequestTimeout,
			Message: "the request body did not arrive in time (server.read_timeout_seconds)"}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON,
		Message: "the request body could not be read to its end: the client closed it or sent less than it declared"}
}

// checkJSONBody refuses bodies that are not JSON (415) or declare a length
// over the limit (413) before anything is read.
func (a *API) checkJSONBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Message: "request body must be JSON: send Content-Type: application/json"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Message: fmt.Sprintf("request body must be JSON, not %q: send Content-Type: application/json", ct)}
	}
	if r.ContentLength > a.opts.MaxBodyBytes {
		return a.tooLarge()
	}
	return nil
}

func (a *API) jsonError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return a.tooLarge()
	case errors.Is(err, io.EOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "request body is empty; it must be a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "request body ends in the middle of a JSON value"}
	case errors.As(err, &syntax):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON,
			Message: fmt.Sprintf("request body is not valid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON,
				Message: fmt.Sprintf("request body must be %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)}
		}
		return badRequest("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "request body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return "a " + k
}
