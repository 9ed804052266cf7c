package directdeploy

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
)

// writeImageArgs builds the args of IPA's write_image deploy step exactly as Ironic's AgentDeploy.write_image
// does for a whole-disk image downloaded from its URL (image_download_source http, no image server auth):
// {"image_info": {...}, "configdrive": <string or null>}. The checksum is the one resolved at the core step (a
// checksum URL is never passed on: the agent verifies the digest the deploy began with). The result holds the
// config drive and any image authorization secret: it goes to the agent and is never logged or stored.
func (d *Deploy) writeImageArgs(ctx context.Context, t *driver.Task) (map[string]any, error) {
	n := t.Node
	ii := n.InstanceInfo
	src, _ := ii["image_source"].(string)
	info := map[string]any{
		"id":                src[strings.LastIndex(src, "/")+1:],
		"urls":              []any{src},
		"disk_format":       ii["image_disk_format"],
		"container_format":  ii["image_container_format"],
		"stream_raw_images": true, // Ironic's [agent]stream_raw_images default: raw images go straight to disk
		"node_uuid":         n.UUID,
	}
	sum, _ := n.DriverInternalInfo[keyChecksum].(map[string]any)
	if sum == nil {
		return nil, fmt.Errorf("no checksum was resolved for node %s: the deploy step must run first; deploy again", n.UUID)
	}
	// Ironic sends image_os_hash_* when both are set and image_checksum when set; the agent prefers the former.
	if sum["field"] == "image_os_hash_value" {
		info["os_hash_algo"], info["os_hash_value"] = sum["algo"], sum["value"]
		if c, _ := ii["image_checksum"].(string); c != "" && !isURL(c) {
			info["checksum"] = c
		}
	} else if prefixed, _ := sum["prefixed"].(bool); prefixed {
		info["checksum"] = fmt.Sprintf("%s:%s", sum["algo"], sum["value"]) // given as algo:digest, kept so
	} else {
		info["checksum"] = sum["value"]
	}
	if secret, _ := ii["image_request_authorization_secret"].(string); secret != "" {
		info["image_request_authorization"] = base64.StdEncoding.EncodeToString([]byte(secret))
	}
	// An oci:// disk artifact: the blob's URL, digest and format, and the registry's authorization (oci.go).
	if err := d.ociImageInfo(ctx, t, info); err != nil {
		return nil, err
	}
	proxies := map[string]any{}
	for _, scheme := range []string{"http", "https"} {
		if p, _ := n.DriverInfo["image_"+scheme+"_proxy"].(string); p != "" {
			proxies[scheme] = p
		}
	}
	if len(proxies) > 0 {
		info["proxies"] = proxies
		if np, ok := n.DriverInfo["image_no_proxy"]; ok && np != nil {
			info["no_proxy"] = np
		}
	}
	if err := d.localImage(n, info); err != nil { // image_download_source local: the conductor's URL (local.go)
		return nil, err
	}
	cd, err := agentdeploy.ConfigDrive(ctx, t)
	if err != nil {
		return nil, err
	}
	// Ironic sends the config drive twice (image_info for older agents, args for the step); null when none.
	var drive any
	if cd != nil {
		drive = *cd
		info["configdrive"] = *cd
	}
	return map[string]any{"image_info": info, "configdrive": drive}, nil
}
