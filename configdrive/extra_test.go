package configdrive

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExtraFiles(t *testing.T) {
	node := NodeInfo{UUID: "6f5b3c2e-0000-4000-8000-000000000001", Name: "n1"}
	extra := map[string][]byte{"ferric/hostd.json": []byte(`{"node_uuid":"x"}`)}

	// From a dict: the drive's files and the extra one.
	iso, err := BuildWithFiles(Drive{UserData: "#cloud-config\n"}, node, extra)
	require.NoError(t, err)
	files, err := filesOfImage(iso)
	require.NoError(t, err)
	assert.Equal(t, `{"node_uuid":"x"}`, string(files["ferric/hostd.json"]))
	assert.Equal(t, "#cloud-config\n", string(files["openstack/latest/user_data"]))

	// Into a supplied ISO: its files are kept.
	plain, err := Build(Drive{UserData: "#!/bin/sh\n"}, node)
	require.NoError(t, err)
	iso, err = AddFiles(plain, extra)
	require.NoError(t, err)
	files, err = filesOfImage(iso)
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/sh\n", string(files["openstack/2012-08-10/user_data"]))
	assert.Contains(t, files, "ferric/hostd.json")
	assert.Contains(t, files, "openstack/latest/meta_data.json")

	for name, tc := range map[string]struct {
		img   []byte
		extra map[string][]byte
		want  string
	}{
		"not an image":         {[]byte("hello"), extra, "neither ISO 9660 nor vfat"},
		"openstack path":       {plain, map[string][]byte{"openstack/latest/user_data": nil}, "outside openstack/"},
		"already in the drive": {iso, extra, "already holds ferric/hostd.json"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := AddFiles(tc.img, tc.extra)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestVendorDataFile: Ferric's vendor data lands beside every version's meta_data.json, and a drive that has its own
// vendor_data.json is refused rather than changed.
func TestVendorDataFile(t *testing.T) {
	node := NodeInfo{UUID: "6f5b3c2e-0000-4000-8000-000000000002", Name: "n2"}
	vd := []byte(`{"cloud-init":"#cloud-config\n"}`)
	iso, err := BuildWithFiles(Drive{VendorData: map[string]any{"user": "kept"}}, node, map[string][]byte{VendorDataKey: vd})
	require.NoError(t, err)
	files, err := filesOfImage(iso)
	require.NoError(t, err)
	for _, ver := range Versions() {
		assert.Equal(t, string(vd), string(files["openstack/"+ver+"/vendor_data.json"]), ver)
		assert.JSONEq(t, `{"user":"kept"}`, string(files["openstack/"+ver+"/vendor_data2.json"]), "the user's vendor data is untouched")
	}
	_, err = AddFiles(iso, map[string][]byte{VendorDataKey: vd})
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "already holds openstack/")
}
