package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRamdiskBuildFlags checks the flags reach the build and bad values fail naming the flag, before any kernel
// package is read (the kernel path below does not exist).
func TestRamdiskBuildFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "site-ca.der")
	assert.NoError(t, os.WriteFile(notPEM, []byte{0x30, 0x82, 0x01}, 0o644))
	noKernel := filepath.Join(dir, "linux-image.deb")
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"no kernel", []string{"build"}, "--kernel-deb is required"},
		{"unknown profile", []string{"build", "--kernel-deb", noKernel, "--profile", "desktop"}, `unknown ramdisk profile "desktop"`},
		{"bad CA", []string{"build", "--kernel-deb", noKernel, "--profile", "vm", "--ca-cert", notPEM}, "--ca-cert " + notPEM + ": no PEM certificate"},
		{"absent CA", []string{"build", "--kernel-deb", noKernel, "--ca-cert", notPEM + ".missing"}, "--ca-cert " + notPEM + ".missing"},
		{"kernel read after the checks", []string{"build", "--kernel-deb", noKernel, "--module", "bnx2x"}, "extract " + noKernel},
		{"not build", []string{"make"}, "ferric ramdisk build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runRamdisk(context.Background(), tc.args, &out, &errb)
			assert.ErrorContains(t, err, tc.err)
		})
	}
}
