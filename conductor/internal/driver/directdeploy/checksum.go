package directdeploy

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// hexLen is the length in hex digits of each digest the agent can verify; md5 only with --allow-md5-checksum.
var hexLen = map[string]int{"md5": 32, "sha256": 64, "sha512": 128}

// algoByLen names the algorithm of a bare checksum by its length, as Ironic and IPA do.
var algoByLen = map[int]string{32: "md5", 64: "sha256", 128: "sha512"}

var hexDigits = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// isURL reports whether a checksum field holds a URL to a checksum file rather than a digest.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// checksumSpec is the checksum a deploy verifies the image against, as instance_info gives it.
type checksumSpec struct {
	algo     string // named or detected by length; "" only for a URL not yet resolved
	value    string // hex digest, or a URL to a checksum file (url true)
	url      bool
	prefixed bool   // image_checksum was given as algo:digest (sent to the agent so, as Ironic does)
	field    string // the instance_info field it came from, for errors
}

// readChecksum checks the checksum fields of instance_info as Ironic's AgentDeploy.validate does: image_os_hash_algo
// and image_os_hash_value together (they win when both are set), else image_checksum (a digest, algo:digest, or
// a URL to a checksum file). md5 is refused unless allowMD5.
func readChecksum(ii map[string]any, allowMD5 bool) (checksumSpec, error) {
	algo, _ := ii["image_os_hash_algo"].(string)
	value, _ := ii["image_os_hash_value"].(string)
	sum, _ := ii["image_checksum"].(string)
	switch {
	case algo != "" && value == "":
		return checksumSpec{}, fmt.Errorf("instance_info.image_os_hash_value is missing while image_os_hash_algo is %q: set both, or neither and image_checksum", algo)
	case algo == "" && value != "":
		return checksumSpec{}, fmt.Errorf("instance_info.image_os_hash_algo is missing while image_os_hash_value is set: set it to sha256 or sha512")
	case algo != "":
		algo = strings.ToLower(algo)
		return checkDigest(checksumSpec{algo: algo, value: value, field: "image_os_hash_value"}, "image_os_hash_algo", allowMD5)
	case sum == "":
		return checksumSpec{}, fmt.Errorf("instance_info.image_checksum, or image_os_hash_algo and image_os_hash_value, must be set: " +
			"give the image's sha256 or sha512 (or a URL to its checksum file)")
	case isURL(sum):
		return checksumSpec{value: sum, url: true, field: "image_checksum"}, nil
	}
	// Ironic accepts "algo:digest" in image_checksum too.
	if a, v, ok := strings.Cut(sum, ":"); ok {
		return checkDigest(checksumSpec{algo: strings.ToLower(a), value: v, prefixed: true, field: "image_checksum"}, "image_checksum", allowMD5)
	}
	return checkDigest(checksumSpec{value: sum, field: "image_checksum"}, "image_checksum", allowMD5)
}

// checkDigest checks a digest's algorithm (named by algoField, or by the digest's length) and form.
func checkDigest(c checksumSpec, algoField string, allowMD5 bool) (checksumSpec, error) {
	algo := c.algo
	if algo == "" {
		algo = algoByLen[len(c.value)]
		if algo == "" || !hexDigits.MatchString(c.value) {
			return c, fmt.Errorf("instance_info.%s is not a sha256 (64 hex digits) or sha512 (128) digest: "+
				"give the image's digest, algo:digest, or a URL to its checksum file", c.field)
		}
	}
	n, ok := hexLen[algo]
	if !ok {
		return c, fmt.Errorf("instance_info.%s: %q is not an algorithm the agent verifies: use sha256 or sha512", algoField, algo)
	}
	// Ironic's [agent]allow_md5_checksum: md5 proves nothing against a hostile image server.
	if algo == "md5" && !allowMD5 {
		return c, fmt.Errorf("instance_info.%s is an md5 checksum, refused by this conductor: give a sha256 or sha512 "+
			"(or start the conductor with --allow-md5-checksum)", c.field)
	}
	if len(c.value) != n || !hexDigits.MatchString(c.value) {
		return c, fmt.Errorf("instance_info.%s is not a %s digest (%d hex digits): give the image's %s", c.field, algo, n, algo)
	}
	c.algo = algo
	return c, nil
}

// Resolution of a checksum file: Ironic's checksum_utils patterns. A digest at the start or end of a line, the
// image's file name at the end of the line (optionally with "*" for binary mode) or in parentheses (CentOS).
var (
	digestStart = regexp.MustCompile(`^([a-fA-F\d]{128}|[a-fA-F\d]{64}|[a-fA-F\d]{32})\s`)
	digestEnd   = regexp.MustCompile(`\s([a-fA-F\d]{128}|[a-fA-F\d]{64}|[a-fA-F\d]{32})$`)
	digestOnly  = regexp.MustCompile(`^([a-fA-F\d]{128}|[a-fA-F\d]{64}|[a-fA-F\d]{32})$`)
)

// parseChecksumFile finds the image's digest in a checksum file, as Ironic's get_checksum_from_url does: a file
// of one bare digest, else the line naming the image's file name (the last path element of imageSource).
func parseChecksumFile(data []byte, imageSource string) (string, error) {
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("the checksum file is empty")
	}
	if len(lines) == 1 && !strings.ContainsAny(lines[0], " \t") {
		if m := digestOnly.FindStringSubmatch(lines[0]); m != nil {
			return m[1], nil
		}
		return "", fmt.Errorf("the checksum file holds no md5, sha256 or sha512 digest")
	}
	u, err := url.Parse(imageSource)
	if err != nil {
		return "", fmt.Errorf("instance_info.image_source is not a URL: %w", err)
	}
	name := path.Base(u.Path)
	q := regexp.QuoteMeta(name)
	byName := []*regexp.Regexp{regexp.MustCompile(`\s\*?` + q + `$`), regexp.MustCompile(`\s\(` + q + `\)\s`)}
	for _, l := range lines {
		if strings.HasPrefix(l, "#") || (!byName[0].MatchString(l) && !byName[1].MatchString(l)) {
			continue
		}
		for _, re := range []*regexp.Regexp{digestStart, digestEnd} {
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1], nil
			}
		}
	}
	return "", fmt.Errorf("the checksum file has no line naming %s", name)
}

// resolveChecksum returns the digest the agent verifies: the one instance_info gives, or the one read from the
// checksum file it names, fetched through the conductor's artifact fetcher (no loopback or metadata addresses
// unless allowed, bounded in time and size) and checked like a digest given directly.
func (d *Deploy) resolveChecksum(ctx context.Context, n *store.Node) (checksumSpec, error) {
	c, err := readChecksum(n.InstanceInfo, d.cfg.AllowMD5)
	if err != nil || !c.url {
		return c, err
	}
	if d.cfg.Artifacts == nil {
		return c, fmt.Errorf("instance_info.image_checksum is a URL but this conductor fetches no artifacts: give the digest itself")
	}
	data, err := d.cfg.Artifacts.Read(ctx, "instance_info.image_checksum", c.value)
	if err != nil {
		return c, fmt.Errorf("fetch the checksum file: %w", err)
	}
	src, _ := n.InstanceInfo["image_source"].(string)
	digest, err := parseChecksumFile(data, src)
	if err != nil {
		return c, fmt.Errorf("instance_info.image_checksum %s: %v: point it at the image's checksum file", redact(c.value), err)
	}
	return checkDigest(checksumSpec{value: digest, field: "image_checksum"}, "image_checksum", d.cfg.AllowMD5)
}

// redact hides credentials in a URL for messages and logs.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// errInvalid marks a validation failure as the engine's 400.
func errInvalid(err error) error { return fmt.Errorf("%v: %w", err, driver.ErrInvalid) }

// record is the checksum as driver_internal_info keeps it for write_image and direct_installed.
func (c checksumSpec) record() map[string]any {
	return map[string]any{"algo": c.algo, "value": c.value, "field": c.field, "prefixed": c.prefixed}
}
