package bootc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0tQ2vQ3w2yF8k8h2Q user@host"

func TestInstallArgvGolden(t *testing.T) {
	const disk = 20 << 30 // 20480 MiB
	tests := []struct {
		name string
		in   InstallInput
		want []string
	}{
		{"minimal", InstallInput{Options: Options{}, Device: "/dev/vda", DiskBytes: disk},
			[]string{"bootc", "install", "to-disk", "--wipe", "--skip-fetch-check", "--root-size=19712M", "/dev/vda"}},
		{"everything", InstallInput{Options: Options{AuthorizedKeys: key1, TPM2LUKS: true, Filesystem: "xfs",
			Kargs: []string{"console=ttyS0,115200", "quiet"}, RootReserveMiB: 1024, TargetImgref: "quay.io/org/os:42"},
			Device: "/dev/nvme0n1", DiskBytes: disk, KeysFile: "/run/ferric/keys/authorized_keys"},
			[]string{"bootc", "install", "to-disk", "--wipe", "--skip-fetch-check", "--root-size=19456M",
				"--root-ssh-authorized-keys", "/run/ferric/keys/authorized_keys", "--block-setup", "tpm2-luks",
				"--filesystem", "xfs", "--karg", "console=ttyS0,115200", "--karg", "quiet",
				"--target-imgref", "quay.io/org/os:42", "/dev/nvme0n1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InstallArgv(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := InstallArgv(InstallInput{Device: "/dev/vda", DiskBytes: 1 << 30})
	assert.ErrorContains(t, err, "less than the 1024 MiB minimum")
	_, err = InstallArgv(InstallInput{Device: "vda", DiskBytes: disk})
	assert.ErrorContains(t, err, "must be a /dev path")
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		ii      map[string]any
		want    Options
		wantErr string
	}{
		{"defaults", map[string]any{}, Options{RootReserveMiB: 768}, ""},
		{"all", map[string]any{"bootc_authorized_keys": key1 + "\n# comment\n", "bootc_tpm2_luks": "true", "bootc_filesystem": "ext4",
			"bootc_kargs": []any{"a=1", "b"}, "bootc_root_reserve_mib": 1024.0, "bootc_target_imgref": "r/x:1"},
			Options{AuthorizedKeys: key1 + "\n# comment\n", TPM2LUKS: true, Filesystem: "ext4", Kargs: []string{"a=1", "b"}, RootReserveMiB: 1024, TargetImgref: "r/x:1"}, ""},
		{"kargs as string", map[string]any{"bootc_kargs": "a=1 b"}, Options{Kargs: []string{"a=1", "b"}, RootReserveMiB: 768}, ""},
		{"bad key", map[string]any{"bootc_authorized_keys": "ssh-rsa nonsense"}, Options{}, "instance_info.bootc_authorized_keys: line 1 is not an SSH public key"},
		{"no key", map[string]any{"bootc_authorized_keys": "\n# x\n"}, Options{}, "holds no key"},
		{"keys not string", map[string]any{"bootc_authorized_keys": []any{key1}}, Options{}, "must be a string"},
		{"karg newline", map[string]any{"bootc_kargs": []any{"a\nb"}}, Options{}, "instance_info.bootc_kargs"},
		{"karg string newline", map[string]any{"bootc_kargs": "a\nrm -rf"}, Options{}, "must not contain newlines"},
		{"karg number", map[string]any{"bootc_kargs": []any{1.0}}, Options{}, "must be a string"},
		{"fs", map[string]any{"bootc_filesystem": "zfs"}, Options{}, "use xfs, ext4 or btrfs"},
		{"luks", map[string]any{"bootc_tpm2_luks": "maybe"}, Options{}, "must be true or false"},
		{"install hostd", map[string]any{"bootc_install_hostd": true}, Options{InstallHostd: true, RootReserveMiB: 768}, ""},
		{"install hostd not bool", map[string]any{"bootc_install_hostd": "yes please"}, Options{}, "instance_info.bootc_install_hostd: must be true or false"},
		{"reserve", map[string]any{"bootc_root_reserve_mib": 10.0}, Options{}, "between 100 and"},
		{"reserve frac", map[string]any{"bootc_root_reserve_mib": 800.5}, Options{}, "bootc_root_reserve_mib"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOptions(tc.ii)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestImageSource(t *testing.T) {
	ref, err := ValidateImageSource("oci://127.0.0.1:5000/ferric/os@sha256:abc")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5000/ferric/os@sha256:abc", ref)
	for _, bad := range []string{"quay.io/x:1", "http://x", "oci://", "oci:///x", "oci://a b"} {
		_, err := ValidateImageSource(bad)
		assert.ErrorIs(t, err, ErrInvalid, bad)
	}
}
