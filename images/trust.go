package images

// Trust: how registry calls reach a registry at a site — extra CAs (global and per registry), HTTP(S) proxies and
// pull-through mirrors. The conductor's digest resolution and the agent's own registry calls build their transport
// here; the agent's podman is handed the same settings (ramdisk-agent/internal/containerscfg), so both sides trust,
// proxy and mirror alike.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Trust is the site's registry settings. The zero value is the system's roots and the proxy environment.
type Trust struct {
	// CAs is PEM trusted for every registry, in addition to the system roots.
	CAs string `json:"registry_ca,omitempty"`
	// RegistryCAs maps a registry (host[:port], as in image references) to PEM trusted for it only.
	RegistryCAs map[string]string `json:"registry_cas,omitempty"`
	// HTTPProxy, HTTPSProxy and NoProxy have the environment variables' semantics. They may hold credentials
	// (http://user:pass@proxy:3128): never log them, use Redacted. All empty means "the process environment".
	HTTPProxy  string `json:"http_proxy,omitempty"`
	HTTPSProxy string `json:"https_proxy,omitempty"`
	NoProxy    string `json:"no_proxy,omitempty"`
	// Mirrors maps a registry to the mirrors (host[:port][/path]) tried before it, in order, as containers'
	// registries.conf [[registry.mirror]] does; the registry itself is the last resort.
	Mirrors map[string][]string `json:"registry_mirrors,omitempty"`
}

// Empty reports whether t changes nothing.
func (t Trust) Empty() bool {
	return t.CAs == "" && len(t.RegistryCAs) == 0 && !t.HasProxy() && len(t.Mirrors) == 0
}

// HasProxy reports whether a proxy setting is given (otherwise the environment's apply).
func (t Trust) HasProxy() bool { return t.HTTPProxy != "" || t.HTTPSProxy != "" || t.NoProxy != "" }

// Redacted is t for logs: proxy credentials replaced, CA bodies reduced to a count.
func (t Trust) Redacted() map[string]any {
	regs := make([]string, 0, len(t.RegistryCAs))
	for r := range t.RegistryCAs {
		regs = append(regs, r)
	}
	sort.Strings(regs)
	return map[string]any{"global_cas": strings.Count(t.CAs, "BEGIN CERTIFICATE"), "registry_cas": regs,
		"http_proxy": RedactURL(t.HTTPProxy), "https_proxy": RedactURL(t.HTTPSProxy), "no_proxy": t.NoProxy,
		"mirrors": t.Mirrors}
}

// RedactURL replaces the password of a URL's user information with "xxxxx" (the user name too, since a token
// is often given as the user), so proxy URLs can be logged.
func RedactURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "xxxxx@" + s[i+1:] // unparsable but has user info: keep only the host part
		}
		return s
	}
	u.User = url.User("xxxxx")
	return u.String()
}

// ParseCAs checks that pem holds at least one certificate and returns the pool of the system roots plus them.
// what names the setting in the error ("--registry-ca ca.pem").
func ParseCAs(what, pem string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if pem != "" && !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, fmt.Errorf("%s: no PEM certificate found; give the CA certificate(s) that signed the registry's certificate", what)
	}
	return pool, nil
}

// Transport returns an HTTP transport for calls to registry (host[:port]): the system roots plus the global CAs
// plus that registry's own CAs, and the proxies (the environment's when none is set).
func (t Trust) Transport(registry string) (http.RoundTripper, error) {
	pool, err := ParseCAs("registry_ca", strings.TrimSpace(t.CAs+"\n"+t.RegistryCAs[registry]))
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.TLSHandshakeTimeout = 15 * time.Second
	if t.HasProxy() {
		pf := (&httpproxy.Config{HTTPProxy: t.HTTPProxy, HTTPSProxy: t.HTTPSProxy, NoProxy: t.NoProxy}).ProxyFunc()
		tr.Proxy = func(r *http.Request) (*url.URL, error) { return pf(r.URL) }
	}
	return tr, nil
}

// ParseMirror reads "REGISTRY=MIRROR" (--registry-mirror) into t.Mirrors.
func (t *Trust) ParseMirror(s string) error {
	reg, mirror, ok := strings.Cut(s, "=")
	reg, mirror = strings.TrimSpace(reg), strings.TrimSpace(mirror)
	if !ok || reg == "" || mirror == "" || strings.Contains(reg, "://") || strings.Contains(mirror, "://") {
		return fmt.Errorf("--registry-mirror %q: use REGISTRY=MIRROR with host[:port] names, e.g. quay.io=mirror.example.com:5000", s)
	}
	if t.Mirrors == nil {
		t.Mirrors = map[string][]string{}
	}
	for _, m := range t.Mirrors[reg] {
		if m == mirror {
			return nil // flags parsed again after a config file: once is enough
		}
	}
	t.Mirrors[reg] = append(t.Mirrors[reg], mirror)
	return nil
}

// AddCAFile reads --registry-ca's value: FILE (trusted for every registry) or REGISTRY=FILE (for that one).
func (t *Trust) AddCAFile(arg string) error {
	reg, file := "", arg
	if r, f, ok := strings.Cut(arg, "="); ok {
		reg, file = strings.TrimSpace(r), strings.TrimSpace(f)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--registry-ca %s: %w", arg, err)
	}
	if _, err := ParseCAs("--registry-ca "+arg, string(b)); err != nil {
		return err
	}
	if reg == "" {
		t.CAs += string(b)
		return nil
	}
	if t.RegistryCAs == nil {
		t.RegistryCAs = map[string]string{}
	}
	t.RegistryCAs[reg] += string(b)
	return nil
}

// ErrUntrusted marks a registry whose TLS certificate could not be verified.
var ErrUntrusted = errors.New("registry certificate not trusted")

// tlsError words an x509 verification failure for an operator: the registry, the problem, the fix.
func tlsError(registry string, err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var problem string
	switch {
	case errors.As(err, &ua):
		problem = "x509: certificate signed by unknown authority"
	case errors.As(err, &hn):
		problem = hn.Error()
	case errors.As(err, &ci):
		problem = ci.Error()
	case strings.Contains(err.Error(), "x509: "):
		problem = "x509: " + strings.SplitN(err.Error(), "x509: ", 2)[1]
	default:
		return nil
	}
	return fmt.Errorf("registry %s: TLS certificate not trusted (%s): give the conductor its CA with --registry-ca FILE (or %s=FILE): %w",
		registry, problem, registry, ErrUntrusted)
}

// Site is the site's registry settings as the conductor's flags give them and agent.json carries them to agents
// (its keys are part of agent.json; the conductor's boot interfaces embed it, the agent reads it).
type Site struct {
	Trust
	// Policy is a containers-policy.json with keys inline (LoadPolicy), enforced by the agent's podman.
	Policy json.RawMessage `json:"image_policy,omitempty"`
	// Lookaside maps a registry to the URL its GPG signatures are published under (containers registries.d
	// "lookaside"), for signedBy policies.
	Lookaside map[string]string `json:"signature_lookaside,omitempty"`
}

// ParseLookaside reads "REGISTRY=URL" (--signature-lookaside) into s.Lookaside.
func (s *Site) ParseLookaside(v string) error {
	reg, u, ok := strings.Cut(v, "=")
	pu, err := url.Parse(u)
	if !ok || reg == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "file") {
		return fmt.Errorf("--signature-lookaside %q: use REGISTRY=URL, e.g. quay.io=https://sigs.example.com/quay (http, https or file)", v)
	}
	if s.Lookaside == nil {
		s.Lookaside = map[string]string{}
	}
	s.Lookaside[reg] = u
	return nil
}

// ProxyCredentialsInArgs refuses a proxy URL with credentials given as a command-line flag (argv is world-readable
// in /proc): it returns an error naming the flag and envVar, the place for it, when args set flag to such a URL.
func ProxyCredentialsInArgs(args []string, flag, envVar string) error {
	for i, a := range args {
		v, ok := "", false
		switch {
		case a == "-"+flag || a == "--"+flag:
			if i+1 < len(args) {
				v, ok = args[i+1], true
			}
		case strings.HasPrefix(a, "-"+flag+"=") || strings.HasPrefix(a, "--"+flag+"="):
			_, v, ok = strings.Cut(a, "=")
		}
		if ok && strings.Contains(v, "@") {
			if u, err := url.Parse(v); err != nil || u.User != nil {
				return fmt.Errorf("--%s holds credentials, which any local user can read in the process list: set %s in the environment instead (same value)", flag, envVar)
			}
		}
	}
	return nil
}
