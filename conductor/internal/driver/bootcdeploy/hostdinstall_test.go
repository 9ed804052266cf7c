package bootcdeploy

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/configdrive"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBfake\nline2\n-----END CERTIFICATE-----\n"

// TestHostdInstallVendorData: with bootc_install_hostd the config drive's vendor data is a cloud-config that
// downloads ferric-hostd from the conductor with its CA, checks the pinned SHA-256 before installing it into
// /usr/local, and enables its unit; the user's vendor data is kept. Without a served binary the option is refused
// at validation; a drive that cannot carry it fails the deploy instead of leaving the reporter out.
func TestHostdInstallVendorData(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	bin := &HostdBinary{URL: "https://conductor.example:6385/v1/bootc/hostd/ferric-hostd", SHA256: strings.Repeat("ab", 32)}
	d := New(Config{Reporter: Reporter{URL: "https://conductor.example:6385", CA: func() string { return testCA }, Store: st, Hostd: bin}})
	node := func(drive any) (*store.Node, *driver.Task) {
		n := &store.Node{UUID: uuid.NewString(), Name: "h-" + uuid.NewString()[:8], Driver: "fake-hardware",
			ProvisionState: "deploying", CreatedAt: time.Now(), DriverInternalInfo: map[string]any{keyPinned: "r/x@sha256:aa"},
			InstanceInfo: map[string]any{"image_source": "oci://r/x:1", "bootc_install_hostd": true}}
		require.NoError(t, st.CreateNode(ctx, n))
		return n, &driver.Task{Node: n, Log: logrus.NewEntry(logrus.New()),
			ConfigDrive: func(context.Context) (any, error) { return drive, nil },
			DeployLog:   func(context.Context, string, ...string) {}}
	}

	_, task := node(map[string]any{"vendor_data": map[string]any{"mine": "kept"}})
	p, err := d.installParams(ctx, task)
	require.NoError(t, err)
	files := drivesOf(t, *p.ConfigDrive)
	assert.JSONEq(t, `{"mine":"kept"}`, string(files["openstack/latest/vendor_data2.json"]))
	var vd map[string]string
	require.NoError(t, json.Unmarshal(files["openstack/latest/vendor_data.json"], &vd))
	cc := vd["cloud-init"]
	require.True(t, strings.HasPrefix(cc, "#cloud-config\n"), cc)
	var doc struct {
		WriteFiles []struct{ Path, Permissions, Content string } `yaml:"write_files"`
		Runcmd     [][]string                                    `yaml:"runcmd"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(cc), &doc), "valid YAML:\n%s", cc)
	require.Len(t, doc.WriteFiles, 2)
	assert.Equal(t, "/etc/systemd/system/ferric-hostd.service", doc.WriteFiles[0].Path)
	assert.Contains(t, doc.WriteFiles[0].Content, "ExecStart=/usr/local/bin/ferric-hostd")
	assert.Equal(t, "/etc/ferric/conductor-ca.pem", doc.WriteFiles[1].Path)
	assert.Equal(t, testCA, doc.WriteFiles[1].Content, "the CA survives the YAML block")
	require.Len(t, doc.Runcmd, 1)
	script := doc.Runcmd[0][2]
	for _, want := range []string{"--cacert /etc/ferric/conductor-ca.pem", bin.URL, bin.SHA256 + "  $t\" | sha256sum -c -",
		"install -m 0755 \"$t\" /usr/local/bin/ferric-hostd", "systemctl enable --now ferric-hostd.service"} {
		assert.Contains(t, script, want)
	}
	// The checksum check comes before the install: a tampered download never lands.
	assert.Less(t, strings.Index(script, "sha256sum -c"), strings.Index(script, "install -m"))

	// Refusals.
	off := New(Config{Reporter: Reporter{URL: "https://conductor.example:6385", Store: st}})
	n, _ := node(nil)
	err = off.Validate(ctx, n)
	require.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "start it with --hostd-binary")
	_, task = node("http://127.0.0.1:1/cd.iso")
	_, err = d.installParams(ctx, task)
	require.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "not a URL")
	theirs, err := configdrive.BuildWithFiles(configdrive.Drive{}, configdrive.NodeInfo{UUID: "u"},
		map[string][]byte{configdrive.VendorDataKey: []byte(`{}`)})
	require.NoError(t, err)
	enc, err := configdrive.Encode(theirs)
	require.NoError(t, err)
	_, task = node(enc)
	_, err = d.installParams(ctx, task)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already holds openstack/")
}
