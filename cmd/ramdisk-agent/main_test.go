package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestConfigArg: --config is found in every form the flag package accepts, before the other flags are parsed; the
// environment is the fallback; nothing after "--" counts.
func TestConfigArg(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"two dashes, separate", []string{"--api-url", "http://c", "--config", "/a.json"}, "", "/a.json"},
		{"one dash, equals", []string{"-config=/b.json", "--ulimit", "nofile=1:1"}, "", "/b.json"},
		{"environment", []string{"--ulimit", "nofile=1:1"}, "/env.json", "/env.json"},
		{"flag wins over environment", []string{"--config", "/c.json"}, "/env.json", "/c.json"},
		{"after --", []string{"--", "--config", "/d.json"}, "", ""},
		{"a value named config is not the flag", []string{"--api-url", "config"}, "", ""},
		{"none", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FERRIC_AGENT_CONFIG", tc.env)
			assert.Equal(t, tc.want, configArg(tc.args))
		})
	}
}
