package api

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// lookup serves GET /v1/lookup for agents (public, API 1.22+, as Ironic's acl_public_routes make it): a booting
// agent knows only its MAC addresses (or, from its boot medium, its node UUID). Anyone on the provisioning network
// can ask, so an unknown MAC, an unknown node and a node in a state that boots no agent all get the same 404, and an
// answer carries only what an agent needs: see lookupInternalInfo and maskSecrets.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	version := versionOf(r)
	// Before 1.22 the route does not exist in Ironic; answer as for any unknown resource.
	if version < 22 {
		s.writeError(w, r, notFound("Resource could not be found."))
		return
	}
	q := r.URL.Query()
	var macs []string
	for _, a := range strings.Split(q.Get("addresses"), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		mac, err := normalizeMAC(a)
		if err != nil {
			// Ironic ignores bad addresses too; at debug level, so that a hostile client cannot flood the log.
			s.log.WithField("address", a).Debug("lookup: ignoring an invalid MAC address")
			continue
		}
		macs = append(macs, mac)
	}
	// A node_uuid comes from virtual media, where the conductor wrote it; a malformed one is a broken medium.
	nodeUUID := q.Get("node_uuid")
	if nodeUUID != "" && !isUUID(nodeUUID) {
		s.writeError(w, r, badRequest("Invalid node_uuid %q: expected a UUID", nodeUUID))
		return
	}
	if len(macs) == 0 && nodeUUID == "" {
		s.writeError(w, r, badRequest("At least one of 'addresses' and 'node_uuid' parameters is required"))
		return
	}
	res, err := s.eng.Lookup(r.Context(), nodeUUID, macs)
	if err != nil {
		// One answer for every miss, so lookup cannot be used to learn which MACs or nodes exist.
		if errors.Is(err, engine.ErrLookupNotFound) || errors.Is(err, store.ErrNotFound) {
			err = notFound("Resource could not be found.")
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.agentNodeBody(res, version))
}

// agentNodeBody is what a lookup (and a continue_inspection at 1.84+) answers an agent: the node as the agent may
// see it (see lookupInternalInfo and maskSecrets) and the agent configuration, the token included at 1.62+.
func (s *Server) agentNodeBody(res *engine.LookupResult, version int) *ordered {
	n := res.Node
	node := newOrdered()
	node.set("uuid", n.UUID)
	node.set("properties", n.Properties)
	node.set("instance_info", maskSecrets(n.InstanceInfo))
	node.set("driver_internal_info", maskSecrets(lookupInternalInfo(n.DriverInternalInfo)))
	node.set("links", links(s.cfg.PublicURL, "nodes", n.UUID, ""))
	cfg := newOrdered()
	// IPA expects Ironic's whole config block and reads metrics settings at start-up; Ferric sends Ironic's
	// defaults (no metrics backend) so an unmodified IPA works too.
	metrics := newOrdered()
	metrics.set("backend", "noop")
	metrics.set("prepend_host", false)
	metrics.set("prepend_uuid", false)
	metrics.set("prepend_host_reverse", true)
	metrics.set("global_prefix", nil)
	cfg.set("metrics", metrics)
	statsd := newOrdered()
	statsd.set("statsd_host", "localhost")
	statsd.set("statsd_port", 8125)
	cfg.set("metrics_statsd", statsd)
	cfg.set("heartbeat_timeout", int(s.eng.Config().HeartbeatTimeout.Seconds()))
	// The engine's Lookup decides whether this lookup may receive the token; an agent speaking a version
	// older than 1.62 cannot use one, and gets none.
	if version >= 62 {
		cfg.set("agent_token", res.Token)
		cfg.set("agent_token_required", true)
	}
	// Ironic's defaults for IPA's image handling, so the block has every key an unmodified IPA may read.
	cfg.set("disable_deep_image_inspection", false)
	cfg.set("permitted_image_formats", []string{"raw", "qcow2", "iso"})
	cfg.set("enable_bios_bootloader_install", true)
	out := newOrdered()
	out.set("node", node)
	out.set("config", cfg)
	return out
}

// agentReadableKeys are the driver_internal_info keys an agent may learn from the public lookup: the ones IPA's
// hardware managers read (disk erasure settings) and the token, which is masked. The rest (boot media, agent URLs
// and certificates, deploy bookkeeping) stays with the conductor: lookup answers anyone who knows a MAC address.
func agentReadableKeys() []string {
	return []string{"agent_secret_token", "agent_erase_devices_iterations", "agent_erase_devices_zeroize",
		"agent_erase_skip_read_only", "agent_continue_if_ata_erase_failed", "agent_continue_if_secure_erase_failed",
		"agent_enable_ata_secure_erase", "agent_enable_nvme_secure_erase", "disk_erasure_concurrency"}
}

// lookupInternalInfo keeps the agent-readable keys of driver_internal_info.
func lookupInternalInfo(dii map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range agentReadableKeys() {
		if v, ok := dii[k]; ok {
			out[k] = v
		}
	}
	return out
}

// heartbeat serves POST /v1/heartbeat/{node} for agents (public, API 1.22+). The fields are checked against the
// microversion that introduced each (Ironic names the first unknown one); the token, the pinning of the agent's
// address and certificate, and the state rules are the engine's (HeartbeatNode, checkPinned).
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	version := versionOf(r)
	if version < 22 {
		s.writeError(w, r, notFound("Resource could not be found."))
		return
	}
	var body map[string]json.RawMessage
	if err := decodeBody(w, r, maxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	since := map[string]int{"callback_url": 22, "agent_version": 36, "agent_token": 62, "agent_verify_ca": 68,
		"agent_status": 72, "agent_status_message": 72}
	fields := map[string]string{}
	// Unknown fields are refused outright, as Ironic's heartbeat schema does.
	for k := range body {
		if _, known := since[k]; !known {
			s.writeError(w, r, badRequest("Field \"%s\" not recognised", k))
			return
		}
	}
	// Checked in Ironic's order, so the first field too new for the version is the one named.
	for _, k := range []string{"callback_url", "agent_version", "agent_token", "agent_verify_ca", "agent_status", "agent_status_message"} {
		raw, present := body[k]
		if !present {
			continue
		}
		if since[k] > version {
			s.writeError(w, r, badRequest("Field \"%s\" not recognised", k))
			return
		}
		var v *string
		if err := json.Unmarshal(raw, &v); err != nil {
			s.writeError(w, r, badRequest("Invalid %s: expected a string", k))
			return
		}
		if v != nil {
			fields[k] = *v
		}
	}
	// callback_url must be present (Ironic's "Missing argument"); null or empty passes, and the engine decides.
	if _, ok := body["callback_url"]; !ok {
		s.writeError(w, r, badRequest("Missing argument: \"callback_url\""))
		return
	}
	if st := fields["agent_status"]; st != "" && st != "start" && st != "end" && st != "error" {
		s.writeError(w, r, badRequest("Unknown agent status %q: use start, end or error", st))
		return
	}
	// A URL with no host is refused here: the conductor would pin it and later call nowhere.
	if cu := fields["callback_url"]; cu != "" {
		if host, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(cu, "https://"), "http://")); err != nil || host == "" {
			s.writeError(w, r, badRequest("Invalid callback_url %q: use https://host:port of the agent", cu))
			return
		}
	}
	ident := mux.Vars(r)["node"]
	// agent_status_message is accepted for IPA's sake but not recorded.
	err := s.eng.HeartbeatNode(r.Context(), ident, engine.Heartbeat{CallbackURL: fields["callback_url"],
		AgentVersion: fields["agent_version"], AgentToken: fields["agent_token"], AgentVerifyCA: fields["agent_verify_ca"],
		AgentStatus: fields["agent_status"]})
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	// 202 and no body, as Ironic: the heartbeat's work (continuing a step) runs in the background.
	w.WriteHeader(http.StatusAccepted)
}
