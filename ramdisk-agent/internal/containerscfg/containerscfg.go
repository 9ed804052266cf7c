// Package containerscfg owns the containers configuration the agent's podman pulls with: registries.conf (insecure
// registries and mirrors), policy.json (the operator's signature policy), registries.d (where signatures are
// looked up), certs.d/<registry>/ca.crt (per-registry CAs) and a CA bundle (the system's plus the operator's
// global CAs), all written into a directory of the agent's state.
//
// Podman 4 reads policy.json, registries.d and certs.d only from /etc/containers (no environment variable or
// containers.conf key moves them for root), so when they are needed (Files.NeedsEtc) the podman package shows
// this directory at /etc/containers in a private mount namespace of its service: the host's /etc/containers is
// never written, which matters for local agents that run on the conductor's host. registries.conf, the proxies and
// the bundle reach podman through its environment. Without a policy podman keeps the system's policy.json (the
// ramdisk's accepts anything; a host's is the host's).
package containerscfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/images"
)

// Config is what the conductor asked for (agent.json) plus the agent's own settings.
type Config struct {
	// Trust holds the CAs, proxies and mirrors.
	Trust images.Trust
	// Insecure lists registries (and mirrors) reached over plain http.
	Insecure []string
	// Policy is a containers-policy.json with keys inline; empty accepts anything (the ramdisk's behaviour before
	// operators could set one).
	Policy []byte
	// Lookaside maps a registry to the URL its GPG signatures are published under (registries.d "lookaside").
	Lookaside map[string]string
	// SystemBundles are the CA bundles tried, first existing wins, for the bundle copy (default: Debian's, then
	// Fedora's paths).
	SystemBundles []string
}

// Files says where Write put things.
type Files struct {
	// Etc is the directory to show podman as /etc/containers.
	Etc string
	// RegistriesConf and PolicyJSON are inside Etc.
	RegistriesConf, PolicyJSON string
	// CABundle is the system bundle plus the global CAs.
	CABundle string
	// NeedsEtc says whether podman must see Etc as /etc/containers: a policy, per-registry CAs or a signature
	// lookaside were given (registries.conf, the bundle and the proxies reach it through its environment).
	NeedsEtc bool
	// Env is the environment podman needs: SSL_CERT_FILE and the proxies (which may hold credentials: podman's
	// environment is readable by root only, and nothing here reaches argv or a log).
	Env []string
}

// defaultBundles are where Debian (the ramdisk) and Fedora-like hosts keep the system roots.
var defaultBundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}

// Write (re)creates dir/etc-containers and dir/ca-bundle.pem from c, readable by root only.
func Write(dir string, c Config) (*Files, error) {
	f := &Files{Etc: filepath.Join(dir, "etc-containers"), CABundle: filepath.Join(dir, "ca-bundle.pem")}
	f.RegistriesConf, f.PolicyJSON = filepath.Join(f.Etc, "registries.conf"), filepath.Join(f.Etc, "policy.json")
	if err := os.RemoveAll(f.Etc); err != nil {
		return nil, fmt.Errorf("containers configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(f.Etc, "registries.d"), 0o700); err != nil {
		return nil, fmt.Errorf("containers configuration: %w", err)
	}
	policy := c.Policy
	if len(policy) == 0 {
		policy = []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`)
	}
	if _, err := images.ParsePolicy(policy); err != nil {
		return nil, fmt.Errorf("image_policy from the conductor: %w", err)
	}
	files := map[string][]byte{
		f.RegistriesConf: []byte(RegistriesConf(c.Trust.Mirrors, c.Insecure)),
		f.PolicyJSON:     policy,
		filepath.Join(f.Etc, "registries.d", "ferric.yaml"): []byte(registriesD(c.Lookaside)),
	}
	for reg, pem := range c.Trust.RegistryCAs {
		if reg == "" || strings.ContainsAny(reg, "/\\") || reg == "." || reg == ".." {
			return nil, fmt.Errorf("registry_cas: %q is not a registry host[:port]", reg)
		}
		d := filepath.Join(f.Etc, "certs.d", reg)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		files[filepath.Join(d, "ca.crt")] = []byte(pem)
	}
	bundle, err := systemBundle(c.SystemBundles)
	if err != nil {
		return nil, err
	}
	files[f.CABundle] = append(append(bundle, '\n'), c.Trust.CAs...)
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, fmt.Errorf("containers configuration: %w", err)
		}
	}
	f.NeedsEtc = len(c.Policy) > 0 || len(c.Trust.RegistryCAs) > 0 || len(c.Lookaside) > 0
	f.Env = append(f.Env, "SSL_CERT_FILE="+f.CABundle)
	for _, kv := range [][2]string{{"HTTP_PROXY", c.Trust.HTTPProxy}, {"HTTPS_PROXY", c.Trust.HTTPSProxy}, {"NO_PROXY", c.Trust.NoProxy}} {
		if kv[1] != "" {
			f.Env = append(f.Env, kv[0]+"="+kv[1], strings.ToLower(kv[0])+"="+kv[1])
		}
	}
	return f, nil
}

// systemBundle reads the first existing bundle; none at all is not an error (the operator's CAs may be all
// there is in a minimal ramdisk), an unreadable one is.
func systemBundle(paths []string) ([]byte, error) {
	if len(paths) == 0 {
		paths = defaultBundles
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("system CA bundle: %w", err)
		}
	}
	return nil, nil
}

// RegistriesConf renders a registries.conf (v2): no short-name search, each mirrored registry with its mirrors
// in order (pulls by digest use them; the registry stays the fallback), and insecure registries and mirrors.
func RegistriesConf(mirrors map[string][]string, insecure []string) string {
	ins := map[string]bool{}
	for _, r := range insecure {
		ins[r] = true
	}
	var b strings.Builder
	b.WriteString("unqualified-search-registries = []\n")
	regs := make([]string, 0, len(mirrors))
	for r := range mirrors {
		regs = append(regs, r)
	}
	sort.Strings(regs)
	for _, r := range regs {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = %t\n", r, r, ins[r])
		for _, m := range mirrors[r] {
			fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\ninsecure = %t\n", m, ins[m])
		}
	}
	for _, r := range insecure {
		if _, done := mirrors[r]; !done {
			fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", r)
		}
	}
	return b.String()
}

// registriesD renders registries.d's docker section: where each registry's signatures are looked up.
func registriesD(lookaside map[string]string) string {
	if len(lookaside) == 0 {
		return "docker: {}\n"
	}
	regs := make([]string, 0, len(lookaside))
	for r := range lookaside {
		regs = append(regs, r)
	}
	sort.Strings(regs)
	var b strings.Builder
	b.WriteString("docker:\n")
	for _, r := range regs {
		// JSON strings are YAML strings: quoting keeps ports and odd characters intact.
		k, _ := json.Marshal(r)
		v, _ := json.Marshal(lookaside[r])
		fmt.Fprintf(&b, "  %s:\n    lookaside: %s\n", k, v)
	}
	return b.String()
}
