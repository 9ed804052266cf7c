package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/rollout"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// httpError carries a status decided at the call site and the message clients see as faultstring.
// status returns both unchanged, so the message must already be the final, Ironic-worded text.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// errNotAcceptable is Ironic's NotAcceptable (406): a field, filter or argument of a newer version than the
// request's.
var errNotAcceptable = &httpError{http.StatusNotAcceptable, "Request not acceptable."}

// badRequest is a 400 with a fmt.Sprintf message; for bad input it should name the field and the fix.
func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// notFound is a 404 with exactly the given message: unlike store.ErrNotFound, no " could not be found." is
// appended, so callers write Ironic's full sentence (or the generic "The resource could not be found.").
func notFound(format string, a ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

// conflict is a 409 with exactly the given message (e.g. a duplicate named by the field that clashed).
func conflict(format string, a ...any) error {
	return &httpError{http.StatusConflict, fmt.Sprintf(format, a...)}
}

// status maps an error to its HTTP status and the message shown to the client. This is the only place where
// errors become HTTP codes.
func status(err error) (int, string) {
	msg := err.Error()
	// Sentinels are wrapped as "<message>: <sentinel>"; clients see the message only.
	strip := func(sentinel error) {
		msg = strings.TrimSuffix(msg, ": "+sentinel.Error())
	}
	var (
		he *httpError
		le *store.LockedError
		ud *driver.UnknownDriverError
		se *json.SyntaxError
		ue *json.UnmarshalTypeError
		mb *http.MaxBytesError
	)
	switch {
	case errors.As(err, &he):
		return he.code, he.msg
	// Another request or conductor holds the node's reservation: 409, like Ironic's NodeLocked; clients retry.
	case errors.As(err, &le):
		return http.StatusConflict, le.Error()
	// A driver this conductor does not know is a fault in the request, not a missing resource.
	case errors.As(err, &ud):
		return http.StatusBadRequest, ud.Error()
	// The body exceeded the server's read limit (http.MaxBytesReader): 413 with the limit, so clients know the bound.
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body is larger than the limit of %d bytes", mb.Limit)
	// Bodies that are not JSON, or JSON of the wrong type for a field: the decoder's text says where.
	case errors.As(err, &se), errors.As(err, &ue):
		return http.StatusBadRequest, "Invalid JSON in request body: " + msg
	// Wrapped messages name the resource ("Node X"), so the suffix gives Ironic's "... could not be found.".
	case errors.Is(err, store.ErrNotFound):
		strip(store.ErrNotFound)
		return http.StatusNotFound, msg + " could not be found."
	// A unique constraint fired (name, UUID, address): Ironic's 409 "... already exists.".
	case errors.Is(err, store.ErrDuplicate):
		strip(store.ErrDuplicate)
		return http.StatusConflict, msg + " already exists."
	// Every reboot slot of a FleetLock group is held: the client asks again later.
	case errors.Is(err, store.ErrFleetLockFull):
		return http.StatusConflict, msg
	// A rollout request that is wrong names its field (400); a pause, resume or abort its state refuses (409).
	case errors.Is(err, rollout.ErrInvalid):
		strip(rollout.ErrInvalid)
		return http.StatusBadRequest, msg
	case errors.Is(err, rollout.ErrState):
		strip(rollout.ErrState)
		return http.StatusConflict, msg
	case errors.Is(err, store.ErrBadQuery):
		strip(store.ErrBadQuery)
		return http.StatusBadRequest, msg
	// Ironic's InvalidStateRequested is a client error (400), not a 409.
	case errors.Is(err, engine.ErrInvalidState):
		strip(engine.ErrInvalidState)
		return http.StatusBadRequest, msg
	case errors.Is(err, engine.ErrInvalidInput):
		strip(engine.ErrInvalidInput)
		return http.StatusBadRequest, msg
	case errors.Is(err, driver.ErrInvalid):
		strip(driver.ErrInvalid)
		return http.StatusBadRequest, msg
	// Ironic's NodeProtected: a protected node refuses undeploy, rebuild and delete with 403.
	case errors.Is(err, engine.ErrProtected):
		strip(engine.ErrProtected)
		return http.StatusForbidden, msg
	case errors.Is(err, engine.ErrConflict):
		strip(engine.ErrConflict)
		return http.StatusConflict, msg
	// Like Ironic's TemporaryFailure/NoFreeConductorWorker: 503, the same request may succeed later.
	case errors.Is(err, engine.ErrTemporary):
		strip(engine.ErrTemporary)
		return http.StatusServiceUnavailable, msg
	// A timed-out or abandoned request is not a server bug; 503 tells clients to retry.
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "The request could not be completed in time; retry"
	}
	// Anything unmapped is a bug or an outage: its text may hold internals, so the client gets a fixed message
	// and writeError logs the detail.
	return http.StatusInternalServerError, "Internal error; see the conductor log"
}

// faultBody renders Ironic's double-encoded error body: error_message is a string holding JSON with
// faultcode ("Client" below 500, "Server" from 500), faultstring and a null debuginfo.
func faultBody(code int, msg string) []byte {
	fault := "Client"
	if code >= 500 {
		fault = "Server"
	}
	// Python's json.dumps separators, as Ironic writes them.
	inner := `{"faultcode": ` + jsonString(fault) + `, "faultstring": ` + jsonString(msg) + `, "debuginfo": null}`
	return marshalIndent(map[string]string{"error_message": inner})
}

// writeError writes err as Ironic does; server errors are logged with their detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code >= 500 {
		s.log.WithError(err).WithField("path", r.URL.Path).Error("request failed")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(faultBody(code, msg))
}

// marshalIndent encodes v as Python's json.dumps does (Ironic's wire format).
func marshalIndent(v any) []byte { return encodePy(make([]byte, 0, 1024), v) }

// pySeparators adds a space after every ',' and ':' outside strings of compact JSON.
func pySeparators(in []byte) []byte {
	out := make([]byte, 0, len(in)+len(in)/8)
	inStr, esc := false, false
	for _, c := range in {
		out = append(out, c)
		switch {
		// The byte after a backslash inside a string is escaped content: a \" does not end the string.
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		// Only structural separators gain a space; a ',' or ':' inside a value is copied as it is.
		case !inStr && (c == ',' || c == ':'):
			out = append(out, ' ')
		}
	}
	return out
}

// ordered is a JSON object that keeps its keys in insertion order.
type ordered struct {
	keys []string
	vals map[string]any
}

// newOrdered returns an empty ordered object ready for set.
func newOrdered() *ordered { return &ordered{vals: map[string]any{}} }

// set stores v under k; a new key goes last, an existing key keeps its position.
func (o *ordered) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *ordered) get(k string) (any, bool) { v, ok := o.vals[k]; return v, ok }

// MarshalJSON writes the keys in order (for callers outside this package's encoder).
func (o *ordered) MarshalJSON() ([]byte, error) {
	b := encodePy(nil, o)
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(marshalIndent(v))
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) string { return string(appendString(nil, s)) }
