package conductor

// The ferric-hostd binary a conductor serves to image-mode hosts that install it through cloud-init
// (instance_info.bootc_install_hostd, --hostd-binary).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// hostdChecksum reads the ferric-hostd binary the conductor serves (--hostd-binary) and returns its SHA-256, the
// pin deploys put in the vendor data; "" when none is configured. An unreadable file stops the start.
func hostdChecksum(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--hostd-binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("--hostd-binary %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
