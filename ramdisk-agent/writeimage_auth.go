package agent

// Credentials and proxies of the image download, as Ironic hands them to IPA in image_info: an Authorization
// header (image_request_authorization), HTTP basic credentials (image_server_auth_strategy http_basic), and
// per-node proxies (driver_info image_http(s)_proxy, image_no_proxy) that replace the site's. None is ever logged.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/diskimage"
)

// imageAuth returns the Authorization header value of the image requests ("" for none). qcow2 is refused with
// credentials: qemu-img reads the image a second time by URL, and could only get them on its argv.
func imageAuth(info deploy.ImageInfo) (string, error) {
	auth := ""
	switch {
	case info.ImageRequestAuthorization != "":
		b, err := base64.StdEncoding.DecodeString(info.ImageRequestAuthorization)
		if err != nil || len(b) == 0 || strings.ContainsAny(string(b), "\r\n") {
			return "", errors.New("image_info.image_request_authorization is not base64 of one header value: " +
				"fix instance_info.image_request_authorization_secret")
		}
		auth = string(b)
	case info.ImageServerAuthStrategy == "http_basic":
		if info.ImageServerUser == "" || info.ImageServerPassword == "" {
			return "", errors.New("image_info.image_server_auth_strategy is http_basic but image_server_user or " +
				"image_server_password is empty: set both in the conductor's [deploy] options")
		}
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(info.ImageServerUser, info.ImageServerPassword)
		auth = req.Header.Get("Authorization")
	case info.ImageServerAuthStrategy != "" && info.ImageServerAuthStrategy != "noauth":
		return "", fmt.Errorf("image_info.image_server_auth_strategy %q: this agent knows http_basic and noauth",
			info.ImageServerAuthStrategy)
	}
	if auth != "" && info.DiskFormat == diskimage.FormatQCOW2 {
		return "", errors.New("image_info.disk_format is qcow2 and the image server wants credentials: qemu-img " +
			"reads a qcow2 image again by URL and cannot be given them safely; serve it without authentication " +
			"(the conductor's cache) or convert it to raw")
	}
	return auth, nil
}

// imageClient is siteClient for the image, its checksum file and config drive: the per-node proxies of image_info
// replace the site's when given.
func (a *Agent) imageClient(info deploy.ImageInfo, host string, timeout time.Duration) (*http.Client, error) {
	hc, err := a.siteClient(host, timeout)
	if err != nil || (len(info.Proxies) == 0 && info.NoProxy == "") {
		return hc, err
	}
	for scheme, p := range info.Proxies {
		if u, err := url.Parse(p); err != nil || u.Host == "" {
			return nil, fmt.Errorf("image_info.proxies[%s] is not a proxy URL: fix driver_info.image_%s_proxy",
				scheme, scheme)
		}
	}
	pf := (&httpproxy.Config{HTTPProxy: info.Proxies["http"], HTTPSProxy: info.Proxies["https"],
		NoProxy: info.NoProxy}).ProxyFunc()
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr.Proxy = func(r *http.Request) (*url.URL, error) { return pf(r.URL) }
	}
	return hc, nil
}
