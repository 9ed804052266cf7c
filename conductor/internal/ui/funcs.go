package ui

// Template helpers: formatting only; html/template does the escaping.

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// funcs are the helpers the templates call.
func funcs() template.FuncMap {
	return template.FuncMap{
		"short": shortDigest,
		"bytes": humanBytes,
		"when":  when,
		"deref": func(b *bool) bool { return b != nil && *b },
	}
}

// shortDigest shortens sha256:<64 hex> to its first 12 hex digits, as container tools show image IDs; the full
// digest stays in the element's title.
func shortDigest(d string) string {
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}

// humanBytes renders a byte count in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// when renders a time in UTC to the second; the zero time (or nil) is empty.
func when(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
