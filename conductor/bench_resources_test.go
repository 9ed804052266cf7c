package conductor_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/test/conductortest"
)

// BenchmarkListPerItem measures a full page (1,000 items, detail) of every list resource issue 15 added next to
// nodes, and reports the cost per item ("ns/item"): no endpoint added by the issue may cost more per item than the
// node list does. Items are created through the API, as a client would.
func BenchmarkListPerItem(b *testing.B) {
	const n = 1000
	c := conductortest.Start(b)
	cl := &http.Client{}
	ids := createNodes(b, c, n, "per-item")
	for i, id := range ids {
		do(b, cl, http.MethodPost, c.URL+"/v1/ports", fmt.Sprintf(`{"node_uuid":%q,"address":"52:54:%02x:%02x:%02x:01","extra":{"rack":"r1"}}`,
			id, i>>16&0xff, i>>8&0xff, i&0xff), 201)
		do(b, cl, http.MethodPost, c.URL+"/v1/portgroups", fmt.Sprintf(`{"node_uuid":%q,"name":"bond-%d","address":"52:55:%02x:%02x:%02x:01"}`,
			id, i, i>>16&0xff, i>>8&0xff, i&0xff), 201)
		do(b, cl, http.MethodPost, c.URL+"/v1/chassis", fmt.Sprintf(`{"description":"rack %d","extra":{"row":"b"}}`, i), 201)
		do(b, cl, http.MethodPost, c.URL+"/v1/deploy_templates", fmt.Sprintf(`{"name":"CUSTOM_T%d","steps":[{"interface":"bios",`+
			`"step":"apply_configuration","args":{"settings":[{"name":"LogicalProc","value":"Enabled"}]},"priority":150}]}`, i), 201)
		do(b, cl, http.MethodPost, c.URL+"/v1/allocations", fmt.Sprintf(`{"name":"alloc-%d","resource_class":"none-such"}`, i), 201)
		do(b, cl, http.MethodPost, c.URL+"/v1/volume/connectors", fmt.Sprintf(`{"node_uuid":%q,"type":"iqn",`+
			`"connector_id":"iqn.2026-12.org.example:%d","extra":{"rack":"r1"}}`, id, i), 201)
		do(b, cl, http.MethodPost, c.URL+"/v1/volume/targets", fmt.Sprintf(`{"node_uuid":%q,"volume_type":"iscsi",`+
			`"boot_index":0,"volume_id":"vol-%d","properties":{"target_lun":0,"auth_password":"s3cret"}}`, id, i), 201)
	}
	for _, path := range []string{"nodes/detail", "ports/detail", "portgroups/detail", "chassis/detail",
		"deploy_templates?detail=true", "allocations",
		"volume/connectors?detail=true", "volume/targets?detail=true"} {
		b.Run(path, func(b *testing.B) {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			url := c.URL + "/v1/" + path + sep + "limit=1000"
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				do(b, cl, http.MethodGet, url, "", 200)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/item")
		})
	}
}
