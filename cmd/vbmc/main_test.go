package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfigPassword: the password never comes from argv; FERRIC_VBMC_PASSWORD wins over the file.
func TestConfigPassword(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, "vms.yaml")
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("from-file\n"), 0o600))
	require.NoError(t, os.WriteFile(yaml, []byte("username: admin\npassword_file: "+pwFile+"\nstate_dir: "+dir+"\n"), 0o600))
	for _, tc := range []struct {
		name         string
		args         []string
		env          string
		wantErr      string
		wantPassword string
		wantFile     string
	}{
		{name: "--password is refused", args: []string{"--config", yaml, "--password", "argv-secret"}, wantErr: "FERRIC_VBMC_PASSWORD"},
		{name: "password_file kept for Run to read", args: []string{"--config", yaml}, wantFile: pwFile},
		{name: "the environment wins", args: []string{"--config", yaml}, env: "from-env", wantPassword: "from-env"},
		{name: "config required", args: nil, wantErr: "--config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config(tc.args, func(k string) string {
				if k == passwordEnv {
					return tc.env
				}
				return ""
			})
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "argv-secret", "the refused password is not echoed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantPassword, cfg.Password)
			assert.Equal(t, tc.wantFile, cfg.PasswordFile)
		})
	}
}
