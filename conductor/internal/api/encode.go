package api

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// encodePy appends v to b as Python's json.dumps writes it (Ironic's wire format): ", " and ": " separators,
// no HTML escaping, ordered objects in their order and maps with sorted keys. Common types are written
// directly; anything else goes through encoding/json.
func encodePy(b []byte, v any) []byte {
	// The cases are the shapes handlers build; each writes what json.dumps would, so a body reads the same as
	// Ironic's to clients that compare or log raw responses.
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	// Resource objects: keys in the order they were set, which is Ironic's field order for that resource.
	case *ordered:
		b = append(b, '{')
		for i, k := range x.keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, k)
			b = append(b, ": "...)
			b = encodePy(b, x.vals[k])
		}
		return append(b, '}')
	// Go maps have no order: sort the keys so the same object is written the same way on every request.
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, k)
			b = append(b, ": "...)
			b = encodePy(b, x[k])
		}
		return append(b, '}')
	// Same as map[string]any, without a type switch per value (links, media types).
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, k)
			b = append(b, ": "...)
			b = appendString(b, x[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = encodePy(b, e)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendString(b, e)
		}
		return append(b, ']')
	// Lists of links.
	case []map[string]string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = encodePy(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		// JSON has no NaN or Inf; null keeps the body parseable instead of failing the whole response.
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return append(b, "null"...)
		}
		// Numbers decoded from a request body into any arrive as float64; write whole ones as integers so a
		// stored 8 comes back as 8, not 8e+00 (1e15 keeps the int64 conversion exact).
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.AppendInt(b, int64(x), 10)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	// Already JSON text: write it verbatim.
	case json.Number:
		return append(b, x...)
	// Pages of nodes and other records write themselves, skipping an object per item.
	case pyAppender:
		return x.appendPy(b)
	}
	// Anything else (structs, typed slices) goes through encoding/json and then gets Python's separators; an
	// encoding failure writes null rather than a half-written body.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return append(b, "null"...)
	}
	return append(b, pySeparators(bytes.TrimRight(buf.Bytes(), "\n"))...)
}

// pyAppender is a value that writes itself in encodePy's format (e.g. a page of nodes, written without building
// each node's object first).
type pyAppender interface{ appendPy(b []byte) []byte }

// hexDigits maps a nibble to its lower-case hex digit for \u00XX escapes.
const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (escaping like encoding/json without HTML escaping).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped appends s escaped as inside a JSON string, without the quotes.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		// ASCII: printable bytes other than '"' and '\' are copied later in one run (from start), so only
		// bytes that need escaping break the run.
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			// Other control characters have no short escape: \u00XX, as encoding/json writes them.
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		// An invalid UTF-8 byte becomes U+FFFD, as encoding/json does, so the body is always valid UTF-8.
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// Line and paragraph separators are escaped as encoding/json does: they end a JavaScript string literal.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
