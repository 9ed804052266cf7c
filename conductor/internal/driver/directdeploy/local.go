package directdeploy

// image_download_source, as Ironic's deploy_utils.get_image_download_source resolves it: instance_info, else
// driver_info, else the conductor's --image-download-source (Ironic's [agent]image_download_source, default http).
// http: the agent downloads image_source itself. local: the conductor downloads the image into its cache at the
// core deploy step (a bad URL or checksum fails there, before the agent boots), and the agent downloads it from
// the conductor's /images/ endpoint with a per-deploy token; the agent then needs no image-server credentials
// and no proxies. swift is refused: there is no Object Storage here.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/imagecache"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Image download sources the direct interface offers.
const (
	SourceHTTP  = "http"
	SourceLocal = "local"
)

// LocalConfig is what image_download_source=local needs.
type LocalConfig struct {
	// Default is --image-download-source: http (the default when empty) or local.
	Default string
	// Cache is the conductor's image cache; nil refuses local.
	Cache *imagecache.Cache
	// URL is the conductor's base URL as agents reach it (the agent API URL); image URLs are built on it.
	URL string
}

// Keys in driver_internal_info while a local deploy runs. The token's key holds "token", so every API answer
// masks it; the grant is gone once the image is written or the instance torn down.
const (
	keyImageToken = "direct_image_token"
	keyImageCache = "direct_image_cache" // {"key": algo-hex, "name": file name in the URL, "run": deploy_run}
)

// tokenBytes is the token's entropy: 256 bits, hex in the URL.
const tokenBytes = 32

// CheckSource checks an image download source value; field names where it came from for the message.
func CheckSource(v, field string) error {
	switch v {
	case SourceHTTP, SourceLocal:
		return nil
	case "swift":
		return fmt.Errorf("%s is swift, but this conductor has no Object Storage: use http (the agent downloads "+
			"image_source) or local (the conductor caches the image and serves it to the agent)", field)
	}
	return fmt.Errorf("%s %q is not an image download source: use http (the agent downloads image_source) or local "+
		"(the conductor caches the image and serves it to the agent)", field, v)
}

// downloadSource returns the node's effective image_download_source and the field it came from. As in Ironic an
// empty value falls through to the next place; a value that is not a string is returned as text (and refused).
func (d *Deploy) downloadSource(n *store.Node) (value, field string) {
	for _, p := range []struct {
		m     map[string]any
		field string
	}{{n.InstanceInfo, "instance_info.image_download_source"}, {n.DriverInfo, "driver_info.image_download_source"}} {
		switch v := p.m["image_download_source"].(type) {
		case nil:
		case string:
			if v != "" {
				return v, p.field
			}
		default:
			return fmt.Sprint(v), p.field
		}
	}
	if d.cfg.Local.Default != "" {
		return d.cfg.Local.Default, "--image-download-source"
	}
	return SourceHTTP, "--image-download-source"
}

// validateSource checks image_download_source at validation: its value, and for local that this conductor has
// a cache and may fetch image_source (the deploy-artifact address rules: the conductor, not the agent, connects).
func (d *Deploy) validateSource(ctx context.Context, n *store.Node) error {
	v, field := d.downloadSource(n)
	if err := CheckSource(v, field); err != nil || v != SourceLocal {
		return err
	}
	if d.cfg.Local.Cache == nil || d.cfg.Local.URL == "" {
		return fmt.Errorf("%s is local but this conductor has no image cache: set it to http", field)
	}
	if src, _ := n.InstanceInfo["image_source"].(string); strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if err := d.cfg.Local.Cache.Check(ctx, "instance_info.image_source", src); err != nil {
			return fmt.Errorf("%s is local, so the conductor downloads the image: %w", field, err)
		}
	}
	return nil
}

// prepareLocal runs at the core deploy step, once the checksum is resolved: for local it caches image_source
// (with image_request_authorization_secret as its Authorization header) and grants this deploy the download.
// Whatever the source, an earlier deploy's grant is dropped first.
func (d *Deploy) prepareLocal(ctx context.Context, t *driver.Task, c checksumSpec) error {
	n := t.Node
	d.endLocal(n)
	if v, _ := d.downloadSource(n); v != SourceLocal {
		return nil
	}
	src, _ := n.InstanceInfo["image_source"].(string)
	hdr := http.Header{}
	if secret, _ := n.InstanceInfo["image_request_authorization_secret"].(string); secret != "" {
		hdr.Set("Authorization", secret)
	}
	return d.cacheForAgent(ctx, t, src, hdr, imagecache.Digest{Algo: c.algo, Hex: c.value}, imageName(src))
}

// cacheForAgent fetches an image into the conductor's cache (url and header as the image's server wants them,
// e.g. a registry blob URL and its Authorization) and grants the node's current deploy its download under name.
func (d *Deploy) cacheForAgent(ctx context.Context, t *driver.Task, src string, hdr http.Header, want imagecache.Digest, name string) error {
	n := t.Node
	if d.cfg.Local.Cache == nil {
		return errors.New("image_download_source is local but this conductor has no image cache: set it to http")
	}
	t.Logf(ctx, "image_download_source local: the conductor caches %s (%s)", redact(src), want)
	start := time.Now()
	e, err := d.cfg.Local.Cache.Fetch(ctx, imagecache.Request{URL: src, Header: hdr, Want: want, Holder: n.UUID})
	if err != nil {
		return fmt.Errorf("image_download_source local: the conductor could not cache the image: %w", err)
	}
	how := fmt.Sprintf("downloaded in %s", time.Since(start).Round(time.Millisecond))
	if e.Reused {
		how = "already cached"
	}
	t.Logf(ctx, "image cached on the conductor (%d bytes, %s); the agent downloads it from the conductor", e.Size, how)
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	n.DriverInternalInfo[keyImageToken] = hex.EncodeToString(b)
	// The grant is bound to this deploy run: a later deploy (of any interface) never inherits it, even if a failure
	// path left it behind.
	run, _ := n.DriverInternalInfo[agentdeploy.KeyRun].(string)
	n.DriverInternalInfo[keyImageCache] = map[string]any{"key": e.Key, "name": name, "run": run}
	return nil
}

// localImage points write_image's image_info at the conductor when this deploy was granted a local download:
// the conductor's URL replaces image_source, and the image server's credentials and proxies are not sent (the
// agent reaches the conductor as it does for its heartbeats, and the conductor needs no credentials from it).
func (d *Deploy) localImage(n *store.Node, info map[string]any) error {
	tok, _ := n.DriverInternalInfo[keyImageToken].(string)
	if tok == "" {
		return nil
	}
	rec, _ := n.DriverInternalInfo[keyImageCache].(map[string]any)
	name, _ := rec["name"].(string)
	if name == "" || d.cfg.Local.URL == "" {
		return fmt.Errorf("node %s has an image download grant without an image or conductor URL: deploy again", n.UUID)
	}
	info["urls"] = []any{strings.TrimRight(d.cfg.Local.URL, "/") + imagecache.PathPrefix + n.UUID + "/" + tok + "/" + name}
	for _, k := range []string{"image_request_authorization", "proxies", "no_proxy"} {
		delete(info, k)
	}
	return nil
}

// endLocal drops the deploy's download grant and its hold on the cached image (the image stays cached for
// later deploys until evicted). Called when the image is written, at tear down, and before a new deploy.
func (d *Deploy) endLocal(n *store.Node) {
	delete(n.DriverInternalInfo, keyImageToken)
	delete(n.DriverInternalInfo, keyImageCache)
	if d.cfg.Local.Cache != nil {
		d.cfg.Local.Cache.Release(n.UUID)
	}
}

// hideToken keeps the deploy's image token out of the deploy log and last_error: the agent logs and reports the
// URL it downloads (it hides credentials and queries, not paths), and both are readable through the API while
// the token is valid. It wraps t's deploy log and returns the scrubber for messages.
func hideToken(t *driver.Task) func(string) string {
	tok, _ := t.Node.DriverInternalInfo[keyImageToken].(string)
	if tok == "" {
		return func(s string) string { return s }
	}
	scrub := func(s string) string { return strings.ReplaceAll(s, tok, "<token>") }
	if orig := t.DeployLog; orig != nil {
		t.DeployLog = func(ctx context.Context, source string, lines ...string) {
			out := make([]string, len(lines))
			for i, l := range lines {
				out[i] = scrub(l)
			}
			orig(ctx, source, out...)
		}
	}
	return scrub
}

// deploying reports the states in which a deploy may download its image.
func deploying(n *store.Node) bool {
	s := fsm.State(n.ProvisionState)
	return s == fsm.Deploying || s == fsm.DeployWait
}

// ServedImage is the image the conductor serves to the node's agent now: the grant of its current deploy run,
// only while the node is deploying (a failed, aborted or finished deploy gets nothing, whatever was left behind).
func ServedImage(n *store.Node) (imagecache.Grant, bool) {
	tok, _ := n.DriverInternalInfo[keyImageToken].(string)
	rec, _ := n.DriverInternalInfo[keyImageCache].(map[string]any)
	key, _ := rec["key"].(string)
	name, _ := rec["name"].(string)
	run, _ := rec["run"].(string)
	if cur, _ := n.DriverInternalInfo[agentdeploy.KeyRun].(string); run != cur {
		return imagecache.Grant{}, false
	}
	if !deploying(n) || tok == "" || key == "" || name == "" {
		return imagecache.Grant{}, false
	}
	return imagecache.Grant{Token: tok, Key: key, Name: name}, true
}

// Grants returns the image handler's look-up of a node's grant in st.
func Grants(st store.Store) func(ctx context.Context, node string) (imagecache.Grant, bool) {
	return func(ctx context.Context, node string) (imagecache.Grant, bool) {
		n, err := st.GetNode(ctx, node)
		if err != nil {
			return imagecache.Grant{}, false
		}
		return ServedImage(n)
	}
}

// Holds returns the cache's Held: a node holds its image while it is deploying (a deploy that failed or was
// aborted never called endLocal). A node that cannot be read for another reason keeps its hold.
func Holds(st store.Store) func(ctx context.Context, node string) bool {
	return func(ctx context.Context, node string) bool {
		n, err := st.GetNode(ctx, node)
		if err != nil {
			return !errors.Is(err, store.ErrNotFound)
		}
		return deploying(n)
	}
}

// RestoreHolds holds the cached image of every deploy in progress with a download grant, after a conductor
// restart (holds live in memory): their agents may not have downloaded it yet, so it must not be evicted.
func RestoreHolds(ctx context.Context, st store.Store, cache *imagecache.Cache) (int, error) {
	k := 0
	for _, state := range []fsm.State{fsm.Deploying, fsm.DeployWait} {
		nodes, err := st.ListNodes(ctx, store.NodeFilter{ProvisionState: string(state)}, store.ListOptions{})
		if err != nil {
			return k, fmt.Errorf("list the nodes in %s: %w", state, err)
		}
		for _, n := range nodes {
			if g, ok := ServedImage(n); ok && cache.Hold(n.UUID, g.Key) {
				k++
			}
		}
	}
	return k, nil
}

// safeName keeps a file name to characters that need no escaping in a URL path.
var safeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// imageName is the file name the agent sees: image_source's last path element (agents and logs show it; the
// agent detects the format from the bytes), "image" when there is none.
func imageName(src string) string {
	name := "image"
	if u, err := url.Parse(src); err == nil {
		if b := safeName.ReplaceAllString(path.Base(u.Path), "_"); b != "" && b != "." && b != ".." && b != "_" {
			name = b
		}
	}
	return name
}
