package configdrive

import (
	"fmt"
	"path"
	"strings"
)

// Extra files are Ferric's own additions to a user's config drive (the image-mode reporter's config at
// ferric/hostd.json): files outside openstack/ that cloud-init ignores, carried next to the user's content.

// BuildWithFiles is Build with extra files added beside the drive's own; an extra file may not replace one of
// the drive's (openstack/...).
func BuildWithFiles(d Drive, node NodeInfo, extra map[string][]byte) ([]byte, error) {
	files, err := Files(d, node)
	if err != nil {
		return nil, err
	}
	if err := addExtra(files, extra); err != nil {
		return nil, err
	}
	return buildISO(files)
}

// AddFiles returns image (a config-2 ISO 9660 or vfat image, as a user supplies it) rebuilt as a config-2 ISO
// holding its files and the extra ones. A vfat image becomes an ISO: cloud-init reads both by the config-2 label.
func AddFiles(image []byte, extra map[string][]byte) ([]byte, error) {
	if err := CheckImage(image); err != nil {
		return nil, err
	}
	files, err := filesOfImage(image)
	if err != nil {
		return nil, fmt.Errorf("read the supplied config drive: %w", err)
	}
	if err := addExtra(files, extra); err != nil {
		return nil, err
	}
	return buildISO(files)
}

// VendorDataKey, as a key of the extra files, adds cloud-init vendor data (OpenStack's first vendor data file,
// vendor_data.json, which cloud-init reads beside the vendor_data2.json Ironic writes a dict's vendor_data to) in
// every version directory the drive has, so cloud-init finds it whichever version it reads. A drive that already
// has a vendor_data.json is refused rather than changed.
const VendorDataKey = "openstack/{version}/vendor_data.json"

// addExtra merges extra into files; a path under openstack/ (but VendorDataKey) or one the drive already has is
// refused, so an addition never changes what the user gave cloud-init.
func addExtra(files, extra map[string][]byte) error {
	if vd, ok := extra[VendorDataKey]; ok {
		if err := addVendorData(files, vd); err != nil {
			return err
		}
	}
	for p, b := range extra {
		if p == VendorDataKey {
			continue
		}
		clean := path.Clean(strings.TrimPrefix(p, "/"))
		if strings.HasPrefix(clean, "openstack/") || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("extra file %s: only paths outside openstack/ may be added: %w", p, ErrInvalid)
		}
		if _, taken := files[clean]; taken {
			return fmt.Errorf("the config drive already holds %s; remove it from the drive: %w", clean, ErrInvalid)
		}
		files[clean] = b
	}
	return nil
}

// addVendorData writes vd as vendor_data.json next to every meta_data.json of the drive.
func addVendorData(files map[string][]byte, vd []byte) error {
	var targets []string
	for p := range files {
		dir, name := path.Split(p)
		if name != "meta_data.json" || !strings.HasPrefix(dir, "openstack/") {
			continue
		}
		target := dir + "vendor_data.json"
		if _, taken := files[target]; taken {
			return fmt.Errorf("the config drive already holds %s, and Ferric's vendor data would replace it; merge "+
				"it into the drive's own vendor data, or leave bootc_install_hostd unset: %w", target, ErrInvalid)
		}
		targets = append(targets, target)
	}
	if len(targets) == 0 {
		return fmt.Errorf("the config drive has no openstack/*/meta_data.json to put vendor data beside: %w", ErrInvalid)
	}
	for _, t := range targets {
		files[t] = vd
	}
	return nil
}
