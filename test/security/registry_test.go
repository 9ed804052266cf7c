package security

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// TestRegistryFailuresAreClear: a registry the node cannot use fails the deploy before any agent boots, with a
// last_error that names the registry and the problem and never the pull secret: a wrong secret (401), a
// certificate from a CA nobody trusts, a name that does not resolve. The node ends powered off in deploy failed.
func TestRegistryFailuresAreClear(t *testing.T) {
	const secret = "the-real-secret-value"
	cert := certtest.SelfSigned(t, certtest.Options{CN: "registry", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	trusted := registrytest.Start(t, registrytest.WithBasicAuth("robot", secret), registrytest.WithTLS(cert.TLS))
	bootcimage.Push(t, trusted.PlainHost, "org/os", "1", bootcimage.Options{Username: "robot", Password: secret})
	other := certtest.SelfSigned(t, certtest.Options{CN: "other"})
	untrusted := registrytest.Start(t, registrytest.WithTLS(other.TLS))

	c := conductortest.Start(t, func(cfg *conductor.Config) {
		cfg.Registries.CAs = string(cert.CertPEM) // the site's CA: trusted's certificate, not untrusted's
	})
	for _, tc := range []struct {
		name, image, pullSecret string
		want                    []string
	}{
		{"wrong pull secret", "oci://" + trusted.Host + "/org/os:1", "robot:not-the-secret",
			[]string{trusted.Host, "refused credentials", "image_pull_secret"}},
		{"certificate from an unknown CA", "oci://" + untrusted.Host + "/org/os:1", "",
			[]string{untrusted.Host, "certificate", "--registry-ca"}},
		{"name that does not resolve", "oci://registry.does-not-resolve.invalid:5000/org/os:1", "",
			[]string{"registry.does-not-resolve.invalid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &client{t: t, base: c.URL}
			code, body := api.do(http.MethodPost, "/v1/nodes", map[string]any{"driver": "fake-hardware",
				"deploy_interface": "bootc", "automated_clean": false, "instance_info": map[string]any{"image_source": tc.image,
					"image_pull_secret": tc.pullSecret}}, false)
			require.Equal(t, 201, code, body)
			uuid := nodeUUID(t, body)
			for _, target := range []string{"manage", "provide"} {
				code, body = api.do(http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, false)
				require.Equal(t, 202, code, body)
				api.waitState(uuid, map[string]string{"manage": "manageable", "provide": "available"}[target])
			}
			code, body = api.do(http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active"}, false)
			require.Equal(t, 202, code, body)
			n := api.waitState(uuid, "deploy failed")
			msg, _ := n["last_error"].(string)
			for _, w := range tc.want {
				assert.Contains(t, msg, w)
			}
			assert.NotContains(t, msg, secret)
			assert.NotContains(t, msg, "not-the-secret", "the pull secret given is never in last_error")
			assert.Equal(t, "power off", n["power_state"])
			assert.False(t, strings.Contains(msg, "agent"), "it failed before any agent was booted: %s", msg)
		})
	}
}

func nodeUUID(t *testing.T, body string) string {
	var n struct {
		UUID string `json:"uuid"`
	}
	require.NoError(t, jsonUnmarshal(body, &n))
	return n.UUID
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
