package bootcdeploy

// Delivery of the image-mode reporter's config (bootchost.HostConfig) through the config drive: each install
// mints a fresh credential, the store keeps its hash only, and the credential rides in the config drive the agent
// writes, at bootchost.ConfigDrivePath. A drive that cannot carry it does not fail the deploy: the node is
// deployed without a reporter and the deploy log says why.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy/bootc"
)

// Reporter says where deployed hosts report; a zero Reporter (no Store or URL) delivers nothing.
type Reporter struct {
	// URL is the conductor's API as nodes reach it (the URL agents are given).
	URL string
	// CA returns the PEM the host verifies an https URL with ("" when the API's certificate is publicly
	// trusted or the URL is plain http); may be nil.
	CA func() string
	// Store keeps the credential's hash.
	Store CredentialStore
	// Hostd is the ferric-hostd binary the conductor serves for instance_info.bootc_install_hostd; nil refuses
	// that option (hostdinstall.go).
	Hostd *HostdBinary
}

// CredentialStore is the part of the store the delivery writes.
type CredentialStore interface {
	SetBootcCredential(ctx context.Context, nodeUUID, hash string) error
	DeleteBootcReporter(ctx context.Context, nodeUUID string) error
}

// configDrive is the config drive for the install command: the user's (agentdeploy.ConfigDrive) with the
// reporter's config added, or without it when the reporter is off or the drive cannot carry it.
func (d *Deploy) configDrive(ctx context.Context, t *driver.Task) (*string, error) {
	rep := d.cfg.Reporter
	if rep.Store == nil || rep.URL == "" {
		return agentdeploy.ConfigDrive(ctx, t)
	}
	n := t.Node
	var raw any
	if t.ConfigDrive != nil {
		var err error
		if raw, err = t.ConfigDrive(ctx); err != nil {
			return nil, fmt.Errorf("read the config drive of node %s: %w", n.UUID, err)
		}
	}
	opts, _ := bootc.ParseOptions(n.InstanceInfo) // validated before the deploy started
	// A URL form is fetched by the agent, not the conductor: there is no image here to add the file to.
	if s, ok := raw.(string); ok && strings.Contains(s, "://") {
		if opts.InstallHostd {
			return nil, fmt.Errorf("instance_info.bootc_install_hostd needs a config drive the conductor can add to; "+
				"give it as a dict or as gzip+base64, not a URL: %w", driver.ErrInvalid)
		}
		return d.withoutReporter(ctx, t, "the config drive is given as a URL, which the conductor does not fetch; "+
			"give it as a dict or as gzip+base64 of an ISO to have the reporter configured")
	}
	// A fresh credential per install: a reinstalled host must not be reachable with what the previous install had.
	cred, hash, err := fleet.NewCredential()
	if err != nil {
		return nil, err
	}
	ca := ""
	if rep.CA != nil {
		ca = rep.CA()
	}
	cfg, err := json.Marshal(bootchost.HostConfig{ConductorURL: rep.URL, NodeUUID: n.UUID, Credential: cred, CACert: ca})
	if err != nil {
		return nil, fmt.Errorf("encode the reporter config: %w", err)
	}
	extra := map[string][]byte{bootchost.ConfigDrivePath: cfg}
	if opts.InstallHostd {
		if rep.Hostd == nil {
			return nil, fmt.Errorf("instance_info.bootc_install_hostd is set, but this conductor serves no ferric-hostd; "+
				"start it with --hostd-binary, or unset the option: %w", driver.ErrInvalid)
		}
		vd, err := hostdVendorData(*rep.Hostd, ca)
		if err != nil {
			return nil, err
		}
		extra[configdrive.VendorDataKey] = vd
	}
	iso, err := driveWithFile(ctx, raw, configdrive.NodeInfo{UUID: n.UUID, Name: n.Name}, extra)
	if err != nil {
		// The install was asked for: a drive that cannot carry it fails the deploy rather than leave it out.
		if opts.InstallHostd {
			return nil, fmt.Errorf("instance_info.bootc_install_hostd: %w", err)
		}
		// err never holds the credential: it names the drive's fault only.
		return d.withoutReporter(ctx, t, err.Error())
	}
	enc, err := configdrive.Encode(iso)
	if err != nil {
		return d.withoutReporter(ctx, t, err.Error())
	}
	// The hash is stored last, once the drive carrying its credential exists: the previous credential is void.
	if err := rep.Store.SetBootcCredential(ctx, n.UUID, hash); err != nil {
		return nil, err
	}
	t.Logf(ctx, "image-mode reporter configured in the config drive (%s): reports go to %s", bootchost.ConfigDrivePath, rep.URL)
	return &enc, nil
}

// withoutReporter deploys the user's drive as it is, saying why in the deploy log; the credential of an earlier
// deploy is voided, since the host it was given to is being reinstalled.
func (d *Deploy) withoutReporter(ctx context.Context, t *driver.Task, why string) (*string, error) {
	t.Logf(ctx, "no image-mode reporter for this deploy: %s", why)
	if err := d.cfg.Reporter.Store.DeleteBootcReporter(ctx, t.Node.UUID); err != nil {
		return nil, err
	}
	return agentdeploy.ConfigDrive(ctx, t)
}

// driveWithFile builds the config drive image of raw (nil or "": a drive of meta_data only; a dict; Ironic's
// gzip+base64 string) with extra added (the reporter's config, and the vendor data installing it when asked).
func driveWithFile(ctx context.Context, raw any, node configdrive.NodeInfo, extra map[string][]byte) ([]byte, error) {
	switch cd := raw.(type) {
	// No drive from the user: one holding meta_data (uuid, name) and the reporter's config, so every bootc host
	// can report.
	case nil:
		return configdrive.BuildWithFiles(configdrive.Drive{}, node, extra)
	case string:
		if cd == "" {
			return configdrive.BuildWithFiles(configdrive.Drive{}, node, extra)
		}
		img, err := configdrive.Decode(ctx, cd, configdrive.DecodeOptions{})
		if err != nil {
			return nil, err
		}
		return configdrive.AddFiles(img, extra)
	case map[string]any:
		drive, err := configdrive.FromMap(cd)
		if err != nil {
			return nil, err
		}
		return configdrive.BuildWithFiles(drive, node, extra)
	}
	return nil, fmt.Errorf("the config drive has an unexpected type %T", raw)
}
