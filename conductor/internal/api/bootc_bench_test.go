package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
)

// BenchmarkBootcFleet measures the image-mode endpoints with 1,000 hosts over real HTTP on the store the
// benchmark names (SQLite, and PostgreSQL when FERRIC_TEST_POSTGRES is set): "reports" is one round of reports
// from every host, 32 at a time, with the p50/p99 latency of one report; "images" is GET /v1/bootc/images over
// those hosts (5 booted images, their stale flag from the cache), with its p99.
//
//	go test -tags "$TAGS" -run XXX -bench BenchmarkBootcFleet -benchtime 3x ./conductor/internal/api/
func BenchmarkBootcFleet(b *testing.B) {
	const hosts, parallel = 1000, 32
	for name, open := range bootcStores(b) {
		b.Run(name, func(b *testing.B) {
			st := open(b)
			srv := bootcServer(b, st, nil)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			uuids, creds := make([]string, hosts), make([]string, hosts)
			for i := range uuids {
				n, cred := bootcNode(b, st, fmt.Sprintf("bench-%d", i))
				uuids[i], creds[i] = n.UUID, cred
			}
			report := func(i, round int) time.Duration {
				digest := fmt.Sprintf("sha256:%064d", (i+round)%5)
				body := reportBody(bootcStatus("registry.example/os:stable", digest, "", false), "bench")
				req, err := http.NewRequest(http.MethodPost, ts.URL+hostPath(bootchost.PathReport, uuids[i]), strings.NewReader(body))
				require.NoError(b, err)
				req.Header.Set("Authorization", "Bearer "+creds[i])
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				require.NoError(b, err)
				resp.Body.Close()
				require.Equal(b, http.StatusNoContent, resp.StatusCode)
				return time.Since(start)
			}
			b.Run("reports", func(b *testing.B) {
				var all []time.Duration
				for round := 0; round < b.N; round++ {
					lat := make([]time.Duration, hosts)
					var wg sync.WaitGroup
					next := make(chan int)
					for w := 0; w < parallel; w++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := range next {
								lat[i] = report(i, round)
							}
						}()
					}
					for i := 0; i < hosts; i++ {
						next <- i
					}
					close(next)
					wg.Wait()
					all = append(all, lat...)
				}
				reportPercentiles(b, all)
			})
			b.Run("images", func(b *testing.B) {
				var all []time.Duration
				for i := 0; i < b.N; i++ {
					req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/bootc/images", nil)
					require.NoError(b, err)
					req.SetBasicAuth("op", "pw")
					start := time.Now()
					resp, err := http.DefaultClient.Do(req)
					require.NoError(b, err)
					resp.Body.Close()
					require.Equal(b, http.StatusOK, resp.StatusCode)
					all = append(all, time.Since(start))
				}
				reportPercentiles(b, all)
			})
		})
	}
}

// reportPercentiles adds the p50 and p99 of samples to the benchmark's output, in milliseconds.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	at := func(p float64) float64 {
		return float64(samples[int(p*float64(len(samples)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
