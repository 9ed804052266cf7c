// resolv.conf and hostname: values from DHCP servers and network_data are untrusted text that ends up in a file
// the resolver parses, so only plain domain names and addresses get through.

package netconf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// maxNameservers is glibc's and musl's MAXNS: later nameserver lines are ignored by resolvers, so they are not
// written.
const maxNameservers = 3

// RenderResolv renders resolv.conf: a comment naming the source, up to three nameserver lines and one search
// line. Domains must already be clean (cleanDomains).
func RenderResolv(source string, dns []netip.Addr, search []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by ferric-init from %s\n", source)
	for i, a := range dns {
		if i == maxNameservers {
			fmt.Fprintf(&b, "# %d more nameservers left out: resolvers read only the first %d\n", len(dns)-i, maxNameservers)
			break
		}
		fmt.Fprintf(&b, "nameserver %s\n", a.Unmap())
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	return b.String()
}

// writeResolv replaces path atomically (write a temporary file beside it, then rename), so a resolver never
// reads half a file.
func writeResolv(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".resolv.conf-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// cleanDomains keeps the names that are plain domain names (letters, digits, '-', '_', dots; a trailing dot
// dropped), without duplicates, and returns the rest as bad.
func cleanDomains(in []string) (good, bad []string) {
	seen := map[string]bool{}
	for _, d := range in {
		d = strings.TrimSuffix(strings.TrimSpace(d), ".")
		if d == "" {
			continue
		}
		if !validDomain(d) {
			bad = append(bad, d)
			continue
		}
		if !seen[strings.ToLower(d)] {
			seen[strings.ToLower(d)] = true
			good = append(good, d)
		}
	}
	return good, bad
}

// validDomain accepts RFC 1035 names (labels of at most 63 characters, 253 in all) plus '_' (SRV-style labels
// appear in search lists); anything else could smuggle a keyword or a newline into resolv.conf.
func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validHostname accepts what sethostname(2) takes (at most 64 bytes) and DNS allows.
func validHostname(h string) bool {
	return len(h) <= 64 && !strings.Contains(h, "_") && validDomain(h)
}
