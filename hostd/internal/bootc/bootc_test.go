package bootc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/bootcimage"
)

// standin writes the bootc stand-in; its state file does not exist, so every day-2 command fails as bootc does
// on a host it did not install.
func standin(t *testing.T) Runner {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootc")
	require.NoError(t, os.WriteFile(bin, bootcimage.Standin(t), 0o755))
	return Runner{Path: bin, Env: []string{"FERRIC_STANDIN_STATE=" + filepath.Join(dir, "none.json")},
		StatusTimeout: 10 * time.Second, CommandTimeout: 10 * time.Second}
}

func TestErrorsCarryStderr(t *testing.T) {
	r := standin(t)
	_, _, err := r.Status(context.Background())
	var be *Error
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []string{"status", "--format=json"}, be.Args)
	assert.True(t, strings.HasPrefix(be.Stderr, "error: no bootc state at"), be.Stderr)
	_, err = r.Run(context.Background(), "switch", "--transport", "oci", "x")
	require.ErrorAs(t, err, &be)
	assert.Contains(t, be.Stderr, "pulls only from registries")
}

func TestTimeout(t *testing.T) {
	slow := filepath.Join(t.TempDir(), "bootc")
	require.NoError(t, os.WriteFile(slow, []byte("#!/bin/sh\nsleep 30\n"), 0o755))
	r := Runner{Path: slow, StatusTimeout: 300 * time.Millisecond, CommandTimeout: time.Minute}
	start := time.Now()
	_, _, err := r.Status(context.Background())
	require.ErrorContains(t, err, "no answer within 300ms")
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestTrim(t *testing.T) {
	assert.Equal(t, "x", Trim("  x\n"))
	long := strings.Repeat("a", MaxErrorBytes) + "the cause"
	got := Trim(long)
	assert.True(t, strings.HasSuffix(got, "the cause"))
	assert.Equal(t, MaxErrorBytes+3, len(got))
}
