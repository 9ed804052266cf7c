// Package bootc owns the pure logic of Ferric's bootc deploy: validating the bootc_* instance_info options and
// the image source, the root-size arithmetic, and the `bootc install to-disk` argv. The conductor uses it to
// refuse bad input at deploy time; the agent uses it to build the command it runs.
package bootc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrInvalid marks an option that cannot be used as given.
var ErrInvalid = errors.New("invalid bootc option")

// DefaultReserveMiB is what the install leaves free at the end of the disk: bootc's ESP and the 64 MiB config
// drive fit there (IPA's 768 MiB).
const DefaultReserveMiB = 768

// MinRootMiB is the smallest root filesystem Ferric asks bootc for.
const MinRootMiB = 1024

// Options are the bootc_* keys of instance_info.
type Options struct {
	AuthorizedKeys string   // bootc_authorized_keys: root's authorized_keys (Ironic's)
	TPM2LUKS       bool     // bootc_tpm2_luks: --block-setup tpm2-luks (Ironic's)
	Filesystem     string   // bootc_filesystem: xfs, ext4 or btrfs
	Kargs          []string // bootc_kargs: extra kernel arguments
	RootReserveMiB int64    // bootc_root_reserve_mib: MiB left free at the end of the disk
	TargetImgref   string   // bootc_target_imgref: the image reference the installed system follows
	// InstallHostd (bootc_install_hostd) has cloud-init install ferric-hostd at first boot, for images that carry
	// cloud-init but not the reporter (Ferric's).
	InstallHostd bool
}

func invalid(key, format string, a ...any) error {
	return fmt.Errorf("instance_info.%s: %s: %w", key, fmt.Sprintf(format, a...), ErrInvalid)
}

// ParseOptions reads and validates the bootc_* keys of instance_info.
func ParseOptions(ii map[string]any) (Options, error) {
	o := Options{RootReserveMiB: DefaultReserveMiB}
	if v, ok := ii["bootc_authorized_keys"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return o, invalid("bootc_authorized_keys", "must be a string of authorized_keys lines")
		}
		if err := ValidateAuthorizedKeys(s); err != nil {
			return o, err
		}
		o.AuthorizedKeys = s
	}
	if v, ok := ii["bootc_tpm2_luks"]; ok && v != nil {
		b, err := toBool(v)
		if err != nil {
			return o, invalid("bootc_tpm2_luks", "must be true or false, not %v", v)
		}
		o.TPM2LUKS = b
	}
	if v, ok := ii["bootc_install_hostd"]; ok && v != nil {
		b, err := toBool(v)
		if err != nil {
			return o, invalid("bootc_install_hostd", "must be true or false, not %v", v)
		}
		o.InstallHostd = b
	}
	if v, ok := ii["bootc_filesystem"]; ok && v != nil {
		s, _ := v.(string)
		switch s {
		case "xfs", "ext4", "btrfs":
			o.Filesystem = s
		default:
			return o, invalid("bootc_filesystem", "%v is not supported; use xfs, ext4 or btrfs", v)
		}
	}
	if v, ok := ii["bootc_kargs"]; ok && v != nil {
		kargs, err := parseKargs(v)
		if err != nil {
			return o, err
		}
		o.Kargs = kargs
	}
	if v, ok := ii["bootc_root_reserve_mib"]; ok && v != nil {
		n, err := toInt(v)
		if err != nil || n < 100 || n > 1<<20 {
			return o, invalid("bootc_root_reserve_mib", "%v is not a number of MiB between 100 and 1048576 (default %d)", v, DefaultReserveMiB)
		}
		o.RootReserveMiB = n
	}
	if v, ok := ii["bootc_target_imgref"]; ok && v != nil {
		s, _ := v.(string)
		if s == "" || strings.ContainsAny(s, " \t\n") {
			return o, invalid("bootc_target_imgref", "%v is not an image reference like quay.io/org/image:tag", v)
		}
		o.TargetImgref = s
	}
	return o, nil
}

// ValidateAuthorizedKeys checks that every non-empty, non-comment line parses as an SSH public key.
func ValidateAuthorizedKeys(s string) error {
	n := 0
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
			return invalid("bootc_authorized_keys", "line %d is not an SSH public key (%v); give one key per line, e.g. ssh-ed25519 AAAA... user@host", i+1, err)
		}
		n++
	}
	if n == 0 {
		return invalid("bootc_authorized_keys", "holds no key; give one key per line, or remove the option")
	}
	return nil
}

func parseKargs(v any) ([]string, error) {
	var raw []string
	switch x := v.(type) {
	case string:
		raw = strings.Fields(x)
		if strings.ContainsAny(x, "\n\r\x00") {
			return nil, invalid("bootc_kargs", "must not contain newlines; give a list of arguments")
		}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, invalid("bootc_kargs", "every argument must be a string, not %v", e)
			}
			raw = append(raw, s)
		}
	case []string:
		raw = x
	default:
		return nil, invalid("bootc_kargs", "must be a list of kernel arguments, e.g. [\"console=ttyS0\"]")
	}
	for _, k := range raw {
		if k == "" || strings.ContainsAny(k, "\n\r\x00") || strings.TrimSpace(k) != k {
			return nil, invalid("bootc_kargs", "argument %q is empty or holds whitespace or newlines", k)
		}
	}
	return raw, nil
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(strings.ToLower(x))
	}
	return false, fmt.Errorf("not a boolean: %v", v)
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("not an integer: %v", x)
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("not an integer: %v", v)
}

// ValidateImageSource checks image_source is an oci:// reference and returns the reference without the scheme.
func ValidateImageSource(s string) (string, error) {
	if !strings.HasPrefix(s, "oci://") {
		return "", fmt.Errorf("instance_info.image_source %q must be an oci:// reference to a bootable container, e.g. oci://quay.io/org/image:tag: %w", s, ErrInvalid)
	}
	ref := strings.TrimPrefix(s, "oci://")
	if ref == "" || strings.ContainsAny(ref, " \t\n") || strings.HasPrefix(ref, "/") {
		return "", fmt.Errorf("instance_info.image_source %q is not a valid image reference: %w", s, ErrInvalid)
	}
	return ref, nil
}

// RootSizeMiB is the root filesystem size for a disk: the disk's MiB minus the reserve.
func RootSizeMiB(diskBytes, reserveMiB int64) (int64, error) {
	if reserveMiB == 0 {
		reserveMiB = DefaultReserveMiB
	}
	root := diskBytes>>20 - reserveMiB
	if root < MinRootMiB {
		return 0, fmt.Errorf("the disk holds %d MiB; with %d MiB reserved at its end the root would be %d MiB, less than the %d MiB minimum: %w",
			diskBytes>>20, reserveMiB, root, MinRootMiB, ErrInvalid)
	}
	return root, nil
}

// InstallInput is what the install argv needs besides the options.
type InstallInput struct {
	Options
	Device    string // target block device, e.g. /dev/vda
	DiskBytes int64  // its size
	KeysFile  string // path of the authorized keys file as the container sees it ("" when no keys)
}

// InstallArgv builds `bootc install to-disk ...` for the install container.
func InstallArgv(in InstallInput) ([]string, error) {
	if !strings.HasPrefix(in.Device, "/dev/") {
		return nil, fmt.Errorf("target device %q must be a /dev path: %w", in.Device, ErrInvalid)
	}
	root, err := RootSizeMiB(in.DiskBytes, in.RootReserveMiB)
	if err != nil {
		return nil, err
	}
	argv := []string{"bootc", "install", "to-disk", "--wipe", "--skip-fetch-check", fmt.Sprintf("--root-size=%dM", root)}
	if in.AuthorizedKeys != "" {
		if in.KeysFile == "" {
			return nil, errors.New("authorized keys given but no keys file path")
		}
		argv = append(argv, "--root-ssh-authorized-keys", in.KeysFile)
	}
	if in.TPM2LUKS {
		argv = append(argv, "--block-setup", "tpm2-luks")
	}
	if in.Filesystem != "" {
		argv = append(argv, "--filesystem", in.Filesystem)
	}
	for _, k := range in.Kargs {
		argv = append(argv, "--karg", k)
	}
	if in.TargetImgref != "" {
		argv = append(argv, "--target-imgref", in.TargetImgref)
	}
	return append(argv, in.Device), nil
}
