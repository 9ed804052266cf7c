package bootcdeploy

// ferric-hostd for images that carry cloud-init but not the reporter (instance_info.bootc_install_hostd): the
// config drive's vendor data has cloud-init fetch the binary from the conductor at first boot, check it against
// the SHA-256 pinned here, and install it with its unit into the writable /usr/local and /etc of an image-mode
// host (/usr itself is the read-only image). The binary is not secret; its checksum is what makes the download
// safe over a hostile network, with the conductor's CA when the API serves its own certificate.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/template"
)

// HostdBinary is the ferric-hostd the conductor serves for bootc_install_hostd (--hostd-binary).
type HostdBinary struct {
	// URL is where hosts download it (the API's public hostd path).
	URL string
	// SHA256 is its hex digest, pinned in the vendor data.
	SHA256 string
}

// hostdCloudConfig is the cloud-config. The download goes to a temporary file and is installed only when its
// checksum matches; the unit mirrors dist/hostd/ferric-hostd.service with the binary under /usr/local.
var hostdCloudConfig = template.Must(template.New("hostd").Parse(`#cloud-config
write_files:
  - path: /etc/systemd/system/ferric-hostd.service
    permissions: '0644'
    content: |
      [Unit]
      Description=Ferric image-mode host reporter (ferric-hostd)
      Wants=network-online.target
      After=network-online.target
      [Service]
      ExecStart=/usr/local/bin/ferric-hostd
      Restart=always
      RestartSec=30
      [Install]
      WantedBy=multi-user.target
{{- if .CA }}
  - path: /etc/ferric/conductor-ca.pem
    permissions: '0644'
    content: |
{{ .CA }}
{{- end }}
runcmd:
  - [sh, -c, 'set -e; t=$(mktemp); curl -fsSL --retry 5 {{ if .CA }}--cacert /etc/ferric/conductor-ca.pem {{ end }}-o "$t" "{{ .URL }}"; echo "{{ .SHA256 }}  $t" | sha256sum -c -; mkdir -p /usr/local/bin; install -m 0755 "$t" /usr/local/bin/ferric-hostd; rm -f "$t"; systemctl daemon-reload; systemctl enable --now ferric-hostd.service']
`))

// hostdVendorData renders the vendor data (OpenStack's vendor_data.json form: {"cloud-init": "<cloud-config>"}) that
// installs bin; ca is the PEM the download is verified with ("" for a publicly trusted or plain http URL).
func hostdVendorData(bin HostdBinary, ca string) ([]byte, error) {
	var indented bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(ca)), []byte("\n")) {
		if len(line) > 0 {
			indented.WriteString("      " + string(line) + "\n")
		}
	}
	var b bytes.Buffer
	err := hostdCloudConfig.Execute(&b, struct{ URL, SHA256, CA string }{bin.URL, bin.SHA256, string(bytes.TrimRight(indented.Bytes(), "\n"))})
	if err != nil {
		return nil, fmt.Errorf("render the ferric-hostd vendor data: %w", err)
	}
	return json.Marshal(map[string]string{"cloud-init": b.String()})
}
