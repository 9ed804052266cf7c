package redfish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images/ramdisk"
)

// MediaServer serves per-node boot ISOs at unguessable URLs under /v1/boot-media/; an ISO stops being served
// when its boot is cleaned up.
type MediaServer struct {
	Dir string
	mu  sync.Mutex
	ids map[string]string // id -> file
}

// NewMediaServer stores ISOs in dir.
func NewMediaServer(dir string) *MediaServer { return &MediaServer{Dir: dir, ids: map[string]string{}} }

func (m *MediaServer) add(data []byte) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return "", err
	}
	f := filepath.Join(m.Dir, id+".iso")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.ids[id] = f
	m.mu.Unlock()
	return id, nil
}

func (m *MediaServer) remove(id string) {
	m.mu.Lock()
	f, ok := m.ids[id]
	delete(m.ids, id)
	m.mu.Unlock()
	if ok {
		os.Remove(f)
	} else if id != "" {
		os.Remove(filepath.Join(m.Dir, filepath.Base(id)+".iso")) // from before a restart
	}
}

// ServeHTTP serves GET /v1/boot-media/{id}.iso.
func (m *MediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSuffix(filepath.Base(r.URL.Path), ".iso")
	m.mu.Lock()
	f, ok := m.ids[id]
	m.mu.Unlock()
	if !ok {
		if _, err := os.Stat(filepath.Join(m.Dir, id+".iso")); len(id) == 48 && err == nil {
			f, ok = filepath.Join(m.Dir, id+".iso"), true
		}
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeFile(w, r, f)
}

// VirtualMedia is the redfish-virtual-media boot interface: for each agent boot it builds a UEFI-bootable ISO
// (systemd-boot + the agent kernel and initramfs, and agent.json with the API URL, node UUID and a fresh token,
// volume label ferric-cfg), serves it, inserts it through the BMC and sets a one-time boot from CD.
type VirtualMedia struct {
	Driver   *Driver
	Media    *MediaServer
	APIURL   string // conductor URL for agents (in agent.json)
	MediaURL string // conductor URL for the BMC to download the ISO (default APIURL)
	Loader   string // EFI loader, default /usr/lib/systemd/boot/efi/systemd-bootx64.efi
	Token    func() string
	Insecure []string // registries the agent reaches over http
	// APICA is the PEM the agent verifies an https APIURL with (api_ca in agent.json); nil or "" for none.
	APICA func() string
	// KernelArgs are appended to the agent kernel's command line (driver_info.kernel_append_params adds more).
	KernelArgs string
}

func (v *VirtualMedia) loader() string {
	if v.Loader != "" {
		return v.Loader
	}
	return "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
}

// Validate checks the BMC settings and the agent boot artifacts.
func (v *VirtualMedia) Validate(ctx context.Context, n *store.Node) error {
	if _, err := ParseInfo(n); err != nil {
		return err
	}
	if s, _ := n.DriverInfo["deploy_iso"].(string); s != "" {
		return nil // its own EFI image boots the agent; agent.json is added beside it
	}
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		if s, _ := n.DriverInfo[k].(string); s == "" {
			return fmt.Errorf("driver_info.%s is missing: give a local path or an http(s) URL of the agent's %s: %w", k, strings.TrimPrefix(k, "deploy_"), driver.ErrInvalid)
		}
	}
	if _, err := os.Stat(v.loader()); err != nil {
		return fmt.Errorf("the conductor's EFI loader %s is missing (apt-get install systemd-boot-efi): %w", v.loader(), driver.ErrInvalid)
	}
	return nil
}

// fetch reads a boot artifact from a path or an http(s) URL.
func fetch(ctx context.Context, src string) ([]byte, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return os.ReadFile(src)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 2<<30))
}

// AgentConfig is the agent.json written on the boot ISO.
type AgentConfig struct {
	APIURL             string   `json:"api_url"`
	NodeUUID           string   `json:"node_uuid"`
	Token              string   `json:"token"`
	Advertise          string   `json:"advertise,omitempty"`
	InsecureRegistries []string `json:"insecure_registries,omitempty"`
	NoPivotRoot        bool     `json:"no_pivot_root"`
	APICA              string   `json:"api_ca,omitempty"` // PEM CA certificates the agent verifies an https api_url with
}

// BuildISO makes the boot ISO: an El Torito EFI image with the loader, its entry, the kernel and initramfs, and
// agent.json at the root of a volume labelled ferric-cfg.
func BuildISO(loader, kernel, initrd []byte, cmdline string, cfg AgentConfig) ([]byte, error) {
	esp, err := ramdisk.ESPImage(loader, kernel, initrd, cmdline)
	if err != nil {
		return nil, err
	}
	return isoWith(esp, cfg)
}

// isoWith makes a ferric-cfg ISO whose El Torito EFI image is esp, with agent.json at its root.
func isoWith(esp []byte, cfg AgentConfig) ([]byte, error) {
	cfgJSON, _ := json.MarshalIndent(cfg, "", "  ")
	return ramdisk.BootISO(esp, "ferric-cfg", map[string][]byte{"/agent.json": cfgJSON})
}

// cdMedia finds the system's CD virtual media (through its managers).
func (v *VirtualMedia) cdMedia(s *session) (*schemas.VirtualMedia, error) {
	media, err := s.system.VirtualMedia()
	if err != nil || len(media) == 0 {
		managers, merr := s.system.ManagedBy()
		if merr != nil {
			return nil, bmcError(s.info, "find the system's manager", merr)
		}
		for _, m := range managers {
			ms, err := m.VirtualMedia()
			if err == nil {
				media = append(media, ms...)
			}
		}
	}
	for _, m := range media {
		for _, t := range m.MediaTypes {
			if t == schemas.CDVirtualMediaType || t == schemas.DVDVirtualMediaType {
				return m, nil
			}
		}
	}
	return nil, fmt.Errorf("Redfish BMC %s offers no CD virtual media for this system", s.info.Address)
}

// PrepareRamdisk builds and serves the boot ISO, inserts it (ejecting a previous medium first) and sets a
// one-time UEFI boot from CD.
func (v *VirtualMedia) PrepareRamdisk(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if err := v.Validate(ctx, n); err != nil {
		return err
	}
	token := v.Token()
	acfg := AgentConfig{APIURL: v.APIURL, NodeUUID: n.UUID, Token: token, Advertise: str(n.DriverInfo["agent_advertise"]),
		InsecureRegistries: v.Insecure, NoPivotRoot: true}
	if v.APICA != nil {
		acfg.APICA = v.APICA()
	}
	var iso []byte
	if src := str(n.DriverInfo["deploy_iso"]); src != "" {
		given, err := fetch(ctx, src)
		if err != nil {
			return fmt.Errorf("driver_info.deploy_iso: %w", err)
		}
		esp, err := EFIImage(given)
		if err != nil {
			return fmt.Errorf("driver_info.deploy_iso %s: %w", src, err)
		}
		if iso, err = isoWith(esp, acfg); err != nil {
			return fmt.Errorf("build the boot ISO: %w", err)
		}
	} else {
		kernel, err := fetch(ctx, str(n.DriverInfo["deploy_kernel"]))
		if err != nil {
			return fmt.Errorf("driver_info.deploy_kernel: %w", err)
		}
		initrd, err := fetch(ctx, str(n.DriverInfo["deploy_ramdisk"]))
		if err != nil {
			return fmt.Errorf("driver_info.deploy_ramdisk: %w", err)
		}
		loader, err := os.ReadFile(v.loader())
		if err != nil {
			return err
		}
		cmdline := strings.TrimSpace("console=ttyS0,115200 " + v.KernelArgs + " " + str(n.DriverInfo["kernel_append_params"]))
		if iso, err = BuildISO(loader, kernel, initrd, cmdline, acfg); err != nil {
			return fmt.Errorf("build the boot ISO: %w", err)
		}
	}
	v.cleanMedia(n)
	id, err := v.Media.add(iso)
	if err != nil {
		return err
	}
	n.DriverInternalInfo["vmedia_id"] = id
	n.DriverInternalInfo["agent_secret_token"] = token
	n.DriverInternalInfo["agent_secret_token_pregenerated"] = true
	base := v.MediaURL
	if base == "" {
		base = v.APIURL
	}
	url := strings.TrimRight(base, "/") + "/v1/boot-media/" + id + ".iso"

	s, err := v.Driver.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	cd, err := v.cdMedia(s)
	if err != nil {
		return err
	}
	if cd.Inserted != nil && *cd.Inserted {
		if _, err := cd.EjectMedia(); err != nil {
			return bmcError(s.info, "eject the previous medium", err)
		}
	}
	yes := true
	if _, err := cd.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: url, Inserted: &yes, WriteProtected: &yes}); err != nil {
		// Some BMCs refuse a re-insert until ejected: eject and try once more.
		cd.EjectMedia()
		if _, err2 := cd.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: url, Inserted: &yes, WriteProtected: &yes}); err2 != nil {
			return bmcError(s.info, "insert the agent ISO", err)
		}
	}
	boot := &schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource, BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled,
		BootSourceOverrideMode: schemas.UEFIBootSourceOverrideMode}
	if err := s.system.SetBoot(boot); err != nil {
		boot.BootSourceOverrideMode = ""
		if err2 := s.system.SetBoot(boot); err2 != nil {
			return bmcError(s.info, "set a one-time boot from CD", err)
		}
	}
	t.Log.WithField("iso_bytes", len(iso)).Info("agent ISO inserted; next boot from CD")
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (v *VirtualMedia) cleanMedia(n *store.Node) {
	if id, _ := n.DriverInternalInfo["vmedia_id"].(string); id != "" {
		v.Media.remove(id)
		delete(n.DriverInternalInfo, "vmedia_id")
	}
}

// CleanUpRamdisk ejects the medium and stops serving the ISO.
func (v *VirtualMedia) CleanUpRamdisk(ctx context.Context, t *driver.Task) error {
	v.cleanMedia(t.Node)
	s, err := v.Driver.connect(ctx, t.Node)
	if err != nil {
		return err
	}
	defer s.close()
	cd, err := v.cdMedia(s)
	if err != nil {
		return err
	}
	if cd.Inserted != nil && *cd.Inserted {
		if _, err := cd.EjectMedia(); err != nil {
			return bmcError(s.info, "eject the agent ISO", err)
		}
	}
	return nil
}

// PrepareInstance has nothing to do: the deploy sets the boot device to disk.
func (v *VirtualMedia) PrepareInstance(context.Context, *driver.Task) error { return nil }

// CleanUpInstance has nothing to do.
func (v *VirtualMedia) CleanUpInstance(context.Context, *driver.Task) error { return nil }

// EFIImage returns the UEFI El Torito boot image of an ISO.
func EFIImage(iso []byte) ([]byte, error) { return ramdisk.EFIImage(iso) }
