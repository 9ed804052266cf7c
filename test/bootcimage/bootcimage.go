// Package bootcimage builds the test bootable container images in Go (no registry pulls from outside): a
// single-layer OCI image whose /usr/bin/bootc is the stand-in in ./standin, and a variant without bootc.
package bootcimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Options shape the image.
type Options struct {
	// WithoutBootc leaves /usr/bin/bootc out (the failure case).
	WithoutBootc bool
	// NoFilesystemConfig leaves out /usr/lib/bootc/install/00-ferric.toml (then bootc needs --filesystem).
	NoFilesystemConfig bool
	// Files adds files (path -> content), e.g. /usr/lib/ferric-standin/BOOTX64.EFI.
	Files map[string][]byte
	// Padding adds an incompressible file of this many bytes (to measure pulls).
	Padding int64
	// Marker is written to /etc/ferric-image so two builds differ.
	Marker string
	// InstallDelay makes the stand-in's install take this long (whole seconds).
	InstallDelay time.Duration
	// Username and Password authenticate the push.
	Username, Password string
}

var (
	buildOnce sync.Once
	standin   []byte
	buildErr  error
)

// Standin returns the stand-in bootc binary, built once per test process.
func Standin(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		dir, err := os.MkdirTemp("", "standin-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "bootc")
		cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", out, "./standin")
		cmd.Dir = filepath.Dir(here)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{string(b), err}
			return
		}
		standin, buildErr = os.ReadFile(out)
	})
	if buildErr != nil {
		t.Fatalf("build the bootc stand-in: %v", buildErr)
	}
	return standin
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// Layer builds the image's single layer as a tar.
func Layer(t testing.TB, o Options) []byte {
	t.Helper()
	files := map[string][]byte{
		"/etc/os-release":     []byte("NAME=\"Ferric test OS\"\nID=ferric-test\nVERSION_ID=1\n"),
		"/etc/ferric-image":   []byte(o.Marker + "\n"),
		"/usr/lib/os-release": []byte("NAME=\"Ferric test OS\"\nID=ferric-test\n"),
	}
	if !o.WithoutBootc {
		files["/usr/bin/bootc"] = Standin(t)
	}
	if !o.NoFilesystemConfig {
		files["/usr/lib/bootc/install/00-ferric.toml"] = []byte("[install.filesystem.root]\ntype = \"xfs\"\n")
	}
	if o.InstallDelay > 0 {
		files["/usr/lib/ferric-standin/delay"] = []byte(strconv.Itoa(int(o.InstallDelay.Seconds())) + "\n")
	}
	if o.Padding > 0 {
		pad := make([]byte, o.Padding)
		// Deterministic but incompressible.
		x := uint64(88172645463325252)
		for i := range pad {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			pad[i] = byte(x)
		}
		files["/usr/share/ferric-padding"] = pad
	}
	for k, v := range o.Files {
		files[k] = v
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mtime := time.Unix(1700000000, 0)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sortStrings(paths)
	for _, p := range paths {
		for d := filepath.Dir(p); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		dl = append(dl, d)
	}
	sortStrings(dl)
	for _, d := range dl {
		tw.WriteHeader(&tar.Header{Name: d[1:] + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	}
	for _, p := range paths {
		mode := int64(0o644)
		if filepath.Dir(p) == "/usr/bin" {
			mode = 0o755
		}
		tw.WriteHeader(&tar.Header{Name: p[1:], Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(files[p])), ModTime: mtime})
		tw.Write(files[p])
	}
	tw.Close()
	return buf.Bytes()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Image builds the OCI image.
func Image(t testing.TB, o Options) v1.Image {
	t.Helper()
	data := Layer(t, o)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatalf("image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"containers.bootc": "1", "ostree.bootable": "1"}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push builds the image and pushes it to host/repo:tag (plain http), returning its digest.
func Push(t testing.TB, host, repo, tag string, o Options) string {
	t.Helper()
	img := Image(t, o)
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := authn.Anonymous
	if o.Username != "" {
		auth = &authn.Basic{Username: o.Username, Password: o.Password}
	}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
