package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// MinVersion and MaxVersion bound the microversions Ferric serves (1.x).
const (
	MinVersion = 1
	MaxVersion = 95
)

const (
	headerVersion    = "X-OpenStack-Ironic-API-Version"
	headerMinVersion = "X-OpenStack-Ironic-API-Minimum-Version"
	headerMaxVersion = "X-OpenStack-Ironic-API-Maximum-Version"
)

type versionKey struct{}

// versionOf returns the negotiated minor version of a request.
func versionOf(r *http.Request) int {
	if v, ok := r.Context().Value(versionKey{}).(int); ok {
		return v
	}
	return MinVersion
}

// parseVersion reads the requested minor version from the headers. ok=false means the value is unparseable.
func parseVersion(h http.Header) (minor int, raw string, ok bool) {
	raw = ""
	if v := h.Get("OpenStack-API-Version"); v != "" {
		f := strings.Fields(v)
		if len(f) == 2 && strings.EqualFold(f[0], "baremetal") {
			raw = f[1]
		} else {
			return 0, v, false
		}
	} else {
		raw = h.Get(headerVersion)
	}
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return MinVersion, raw, true
	case strings.EqualFold(raw, "latest"):
		return MaxVersion, raw, true
	}
	major, minorStr, found := strings.Cut(raw, ".")
	if !found || major != "1" {
		return 0, raw, false
	}
	m, err := strconv.Atoi(minorStr)
	if err != nil || m < 0 {
		return 0, raw, false
	}
	return m, raw, true
}

// versionMiddleware negotiates the microversion, answers 406 outside the range, and sets the version headers.
func versionMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		minor, raw, ok := parseVersion(r.Header)
		if !ok {
			writeNotAcceptable(w, "Invalid value for "+headerVersion+" header")
			return
		}
		w.Header().Set(headerMinVersion, fmt.Sprintf("1.%d", MinVersion))
		w.Header().Set(headerMaxVersion, fmt.Sprintf("1.%d", MaxVersion))
		if minor < MinVersion || minor > MaxVersion {
			writeNotAcceptable(w, fmt.Sprintf("Version %s was requested but the minor version is not supported by this service. The supported version range is: [1.%d, 1.%d].", raw, MinVersion, MaxVersion))
			return
		}
		w.Header().Set(headerVersion, fmt.Sprintf("1.%d", minor))
		w.Header().Set("OpenStack-API-Version", fmt.Sprintf("baremetal 1.%d", minor))
		w.Header().Add("Vary", "X-OpenStack-Ironic-API-Version, OpenStack-API-Version")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, minor)))
	})
}

func writeNotAcceptable(w http.ResponseWriter, desc string) {
	inner := `{"code": 406, "title": "Not Acceptable", "description": ` + jsonString(desc) + `}`
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotAcceptable)
	w.Write(marshalIndent(map[string]string{"error_message": inner}))
}

// versionDoc is the v1 version object of the discovery documents.
func versionDoc(base string) *ordered {
	o := newOrdered()
	o.set("id", "v1")
	o.set("links", []map[string]string{{"href": base + "/v1/", "rel": "self"}})
	o.set("status", "CURRENT")
	o.set("min_version", fmt.Sprintf("1.%d", MinVersion))
	o.set("version", fmt.Sprintf("1.%d", MaxVersion))
	return o
}
