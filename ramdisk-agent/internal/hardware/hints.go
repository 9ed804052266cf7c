package hardware

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoDisk: no disk matches the root device hints (or none is big enough).
var ErrNoDisk = errors.New("no suitable disk")

// MinDefaultDiskBytes is Ironic's minimum for the default choice (the smallest disk of at least 4 GiB).
const MinDefaultDiskBytes = 4 << 30

// Choice is the chosen disk and why.
type Choice struct {
	Disk   Disk
	Reason string
}

// Choose picks the install disk with Ironic's root device hint semantics: every given hint must match; among
// matching disks the first in name order wins. Without hints it picks the smallest disk of at least 4 GiB.
// No match is an error naming the hints and the disks seen; there is never a silent fallback.
func Choose(disks []Disk, hints map[string]any) (*Choice, error) {
	if len(hints) == 0 {
		var best *Disk
		for i := range disks {
			d := &disks[i]
			if d.Size < MinDefaultDiskBytes {
				continue
			}
			if best == nil || d.Size < best.Size {
				best = d
			}
		}
		if best == nil {
			return nil, fmt.Errorf("no disk of at least 4 GiB; disks seen: %s: %w", describe(disks), ErrNoDisk)
		}
		return &Choice{Disk: *best, Reason: fmt.Sprintf("no root device hints: smallest disk of at least 4 GiB (%s, %d GiB)", best.Name, best.Size>>30)}, nil
	}
	keys := make([]string, 0, len(hints))
	for k := range hints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "name", "size", "model", "vendor", "serial", "wwn", "wwn_with_extension", "wwn_vendor_extension", "hctl", "by_path", "rotational":
		default:
			return nil, fmt.Errorf("root device hint %q is not supported; use name, size, model, vendor, serial, wwn, wwn_with_extension, wwn_vendor_extension, hctl, by_path or rotational: %w", k, ErrNoDisk)
		}
	}
	for _, d := range disks {
		ok := true
		for _, k := range keys {
			m, err := matchHint(d, k, hints[k])
			if err != nil {
				return nil, err
			}
			ok = ok && m
		}
		if ok {
			return &Choice{Disk: d, Reason: fmt.Sprintf("root device hints %s matched %s", fmtHints(hints), d.Name)}, nil
		}
	}
	return nil, fmt.Errorf("no disk matches root device hints %s; disks seen: %s: %w", fmtHints(hints), describe(disks), ErrNoDisk)
}

func fmtHints(h map[string]any) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, h[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func describe(disks []Disk) string {
	if len(disks) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(disks))
	for _, d := range disks {
		parts = append(parts, fmt.Sprintf("%s (%d GiB, model %q, serial %q)", d.Name, d.Size>>30, d.Model, d.Serial))
	}
	return strings.Join(parts, "; ")
}

// matchHint applies one hint. Strings support Ironic's operators: "s== x", "<in> x", "<or> a <or> b"; size is in
// GiB and supports ==, !=, >=, <=, >, <; name may be a glob.
func matchHint(d Disk, key string, v any) (bool, error) {
	if key == "size" {
		return matchSize(d.Size>>30, v)
	}
	if key == "rotational" {
		want, err := strconv.ParseBool(strings.ToLower(fmt.Sprint(v)))
		if err != nil {
			return false, fmt.Errorf("root device hint rotational=%v must be true or false: %w", v, ErrNoDisk)
		}
		return d.Rotational == want, nil
	}
	actual := map[string]string{"name": d.Name, "model": d.Model, "vendor": d.Vendor, "serial": d.Serial, "wwn": d.WWN,
		"wwn_with_extension": d.WWNWithExtension, "wwn_vendor_extension": d.WWNVendorExt, "hctl": d.HCTL, "by_path": d.ByPath}[key]
	s := strings.TrimSpace(fmt.Sprint(v))
	if key == "name" && !strings.HasPrefix(s, "/dev/") && !strings.HasPrefix(s, "<") && !strings.HasPrefix(s, "s== ") && !strings.HasPrefix(s, "s!= ") {
		s = "/dev/" + s
	}
	return matchString(actual, s, key == "name"), nil
}

func matchString(actual, expr string, glob bool) bool {
	norm := func(x string) string { return strings.ToLower(strings.TrimSpace(x)) }
	switch {
	case strings.HasPrefix(expr, "<or>"):
		for _, alt := range strings.Split(strings.TrimPrefix(expr, "<or>"), "<or>") {
			if matchString(actual, strings.TrimSpace(alt), glob) {
				return true
			}
		}
		return false
	case strings.HasPrefix(expr, "<in>"):
		return strings.Contains(norm(actual), norm(strings.TrimPrefix(expr, "<in>")))
	case strings.HasPrefix(expr, "s== "):
		return norm(actual) == norm(strings.TrimPrefix(expr, "s== "))
	case strings.HasPrefix(expr, "s!= "):
		return norm(actual) != norm(strings.TrimPrefix(expr, "s!= "))
	}
	if glob {
		if ok, _ := filepath.Match(expr, actual); ok {
			return true
		}
	}
	return norm(actual) == norm(expr)
}

func matchSize(gib int64, v any) (bool, error) {
	s := strings.TrimSpace(fmt.Sprint(v))
	ops := []string{">=", "<=", "==", "!=", ">", "<"}
	op := "=="
	for _, o := range ops {
		if strings.HasPrefix(s, o) {
			op, s = o, strings.TrimSpace(strings.TrimPrefix(s, o))
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false, fmt.Errorf("root device hint size=%v must be a number of GiB, optionally with an operator like >= 100: %w", v, ErrNoDisk)
	}
	want := int64(n)
	switch op {
	case ">=":
		return gib >= want, nil
	case "<=":
		return gib <= want, nil
	case ">":
		return gib > want, nil
	case "<":
		return gib < want, nil
	case "!=":
		return gib != want, nil
	}
	return gib == want, nil
}
