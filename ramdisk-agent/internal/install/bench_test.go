package install

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/ramdisk-agent/internal/podman"
	"github.com/ferric-metal/ferric/test/bootcimage"
)

// BenchmarkPull measures a pull into tmpfs storage through the agent's podman client: the peak storage used
// during the pull relative to the image's unpacked size, and the pull time relative to `skopeo copy` of the same
// image from the same registry (medians over b.N runs).
func BenchmarkPull(b *testing.B) {
	need(b, "podman", "runc", "skopeo")
	e := setup(b)
	const padding = 96 << 20
	bootcimage.Push(b, e.reg.Host, "ferric/big", "v1", bootcimage.Options{Padding: padding, Username: "robot", Password: "s3cret-pull-token"})
	unpacked := int64(len(bootcimage.Layer(b, bootcimage.Options{Padding: padding})))
	used := func() int64 {
		var st syscall.Statfs_t
		syscall.Statfs(e.graph, &st)
		return int64(st.Blocks-st.Bfree) * st.Bsize
	}
	var ratios, speed []float64
	for i := 0; i < b.N; i++ {
		base := used()
		var (
			mu   sync.Mutex
			peak int64
		)
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
					if u := used() - base; u > 0 {
						mu.Lock()
						peak = max(peak, u)
						mu.Unlock()
					}
				}
			}
		}()
		start := time.Now()
		res, err := e.client.Pull(context.Background(), e.reg.Host+"/ferric/big:v1", podman.PullOptions{Username: "robot", Password: "s3cret-pull-token", Insecure: true})
		pullTime := time.Since(start)
		close(stop)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		ratios = append(ratios, float64(max(peak, used()-base))/float64(unpacked))
		mu.Unlock()
		dir := filepath.Join(b.TempDir(), "copy")
		start = time.Now()
		out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "--src-creds", "robot:s3cret-pull-token",
			"docker://"+e.reg.Host+"/ferric/big:v1", "dir:"+dir).CombinedOutput()
		skopeo := time.Since(start)
		if err != nil {
			b.Fatalf("skopeo: %v: %s", err, out)
		}
		os.RemoveAll(dir)
		speed = append(speed, pullTime.Seconds()/skopeo.Seconds())
		exec.Command("podman", "--root", e.graph, "--runroot", filepath.Join(filepath.Dir(e.svc.Socket[len("unix://"):]), "rr"), "rmi", "-f", res.ID).Run()
	}
	sort.Float64s(ratios)
	sort.Float64s(speed)
	b.ReportMetric(ratios[len(ratios)/2], "peak-storage/unpacked")
	b.ReportMetric(speed[len(speed)/2], "pull-time/skopeo-copy")
}
