package ipxe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// PathPrefix is where the server is mounted below the API's /v1 (and its unversioned twin).
const PathPrefix = "/ipxe/"

// The files of one prepared agent boot, in the node's directory below the server's dir.
const (
	fileCmdline = "cmdline" // the agent kernel's command line (holds the token)
	fileKernel  = "kernel"
	fileRamdisk = "ramdisk"
	fileConfig  = "config" // a newc archive with /etc/ferric/agent.json (holds the token)
)

// Server serves iPXE network boots from the API listener: the generic boot.ipxe that DHCP hands to iPXE clients,
// and per NIC (by MAC) the node's script, kernel, initramfs and configuration initramfs.
//
// The provisioning network is hostile and iPXE has no credentials, so the paths hold no secret: a request names a
// MAC, and its node's files are served only while (1) a port with that MAC belongs to a node, (2) the node is in
// a state that boots its agent (fsm.BootsAgent), (3) its boot interface is one served here and (4) its agent boot
// is prepared (PrepareRamdisk ran and no CleanUpRamdisk since). Every refusal is the same 404. The token in the
// script and configuration is per boot: PrepareRamdisk makes a new one, CleanUpRamdisk deletes the files and
// forgets it. Residual risk: anyone on the provisioning network who knows a booting node's MAC can read the
// script (and its token) during the boot, as with Ironic's per-MAC iPXE configuration.
type Server struct {
	dir string
	// node finds the node owning a port with the MAC (store.NodeByMACs); interfaces are the boot interface names
	// served here.
	node       func(ctx context.Context, mac string) (*store.Node, error)
	interfaces []string
	baseURL    string

	mu sync.Mutex // serialises replacing a node's directory with the reads of it
}

// NewServer keeps prepared boots in dir (0700), finds nodes by MAC with node and writes script URLs below
// baseURL (the conductor URL iPXE clients reach, e.g. http://10.0.2.2:6385). interfaces are the boot interface
// names whose nodes it serves (ipxe, pxe).
func NewServer(dir, baseURL string, node func(ctx context.Context, mac string) (*store.Node, error), interfaces ...string) *Server {
	return &Server{dir: dir, node: node, interfaces: interfaces, baseURL: strings.TrimRight(baseURL, "/")}
}

// BootScriptURL is the URL of boot.ipxe, the file name an operator's DHCP server hands to iPXE clients.
func (s *Server) BootScriptURL() string { return s.baseURL + "/v1" + PathPrefix + "boot.ipxe" }

// nodeDir is the directory of a node's prepared boot; node UUIDs come from the store, never from a request.
func (s *Server) nodeDir(node string) string { return filepath.Join(s.dir, filepath.Base(node)) }

// put replaces the node's prepared boot with files, atomically: a reader sees the old boot or the new one.
func (s *Server) put(node string, files map[string][]byte) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("ipxe boot directory: %w", err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "."+filepath.Base(node)+"."+hex.EncodeToString(b))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("ipxe boot directory: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("write the iPXE boot's %s: %w", name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	os.RemoveAll(s.nodeDir(node))
	if err := os.Rename(tmp, s.nodeDir(node)); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("install the iPXE boot: %w", err)
	}
	return nil
}

// Remove stops serving the node's boot and deletes its files (the token with them).
func (s *Server) Remove(node string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.RemoveAll(s.nodeDir(node)); err != nil {
		return fmt.Errorf("delete the iPXE boot of node %s: %w", node, err)
	}
	return nil
}

// Prepared reports whether the node has a prepared boot (tests, and the conductor's own bookkeeping).
func (s *Server) Prepared(node string) bool {
	_, err := os.Stat(filepath.Join(s.nodeDir(node), fileCmdline))
	return err == nil
}

// Prune deletes the prepared boots of nodes that may not be served now (after a restart: nodes that left their
// agent boot while the conductor was down, or were deleted). get reads a node by UUID.
func (s *Server) Prune(ctx context.Context, get func(ctx context.Context, node string) (*store.Node, error)) int {
	entries, _ := os.ReadDir(s.dir)
	k := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") { // an interrupted put
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
			continue
		}
		n, err := get(ctx, e.Name())
		if err != nil || !s.serves(n) {
			s.Remove(e.Name())
			k++
		}
	}
	return k
}

// serves reports whether n's boot may be served now: its agent boots through one of our interfaces.
func (s *Server) serves(n *store.Node) bool {
	if !fsm.BootsAgent(fsm.State(n.ProvisionState)) {
		return false
	}
	for _, i := range s.interfaces {
		if n.Interfaces["boot"] == i {
			return true
		}
	}
	return false
}

// Register mounts the server on r (the API's /v1 router, and its unversioned twin).
func (s *Server) Register(r *mux.Router) {
	r.HandleFunc(PathPrefix+"boot.ipxe", s.serveBootScript).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(PathPrefix+"{mac}/{file}", s.serveNodeFile).Methods(http.MethodGet, http.MethodHead)
}

// serveBootScript serves boot.ipxe: generic, no secret, always served.
func (s *Server) serveBootScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(BootScript(s.baseURL + "/v1" + PathPrefix)))
}

// errRefused is every refusal of serveNodeFile: one 404, so a guess learns nothing.
var errRefused = errors.New("not served")

// serveNodeFile serves GET/HEAD /v1/ipxe/{mac}/{file}: file is boot.ipxe (the node's script, rendered for the
// MAC), kernel, ramdisk or config.
func (s *Server) serveNodeFile(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	mac, err := parseMAC(vars["mac"])
	file := vars["file"]
	if err == nil {
		var path string
		if path, err = s.lookup(r.Context(), mac, file); err == nil {
			w.Header().Set("Cache-Control", "no-store")
			if file == "boot.ipxe" {
				err = s.writeNodeScript(w, path, vars["mac"])
			} else {
				w.Header().Set("Content-Type", "application/octet-stream")
				http.ServeFile(w, r, path)
				return
			}
		}
	}
	if err != nil {
		http.NotFound(w, r)
	}
}

// lookup applies the serving rules for a request of file for mac and returns the file's path on disk.
func (s *Server) lookup(ctx context.Context, mac, file string) (string, error) {
	name := file
	switch file {
	case "boot.ipxe":
		name = fileCmdline
	case fileKernel, fileRamdisk, fileConfig:
	default:
		return "", errRefused
	}
	n, err := s.node(ctx, mac)
	if err != nil || !s.serves(n) {
		return "", errRefused
	}
	path := filepath.Join(s.nodeDir(n.UUID), name)
	if _, err := os.Stat(path); err != nil {
		return "", errRefused
	}
	return path, nil
}

// writeNodeScript renders the node's script for the MAC as requested (hex-hyphen form) from the prepared boot's
// command line. A read failure (the boot cleaned up meanwhile) is a refusal like the others.
func (s *Server) writeNodeScript(w http.ResponseWriter, cmdlinePath, hexhyp string) error {
	s.mu.Lock()
	cmdline, err := os.ReadFile(cmdlinePath)
	s.mu.Unlock()
	if err != nil {
		return errRefused
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(NodeScript(s.baseURL+"/v1"+PathPrefix+strings.ToLower(hexhyp)+"/", string(cmdline))))
	return nil
}

// parseMAC reads iPXE's ${mac:hexhyp} (52-54-00-12-34-56) or the colon form and returns the colon form in lower
// case, as ports store addresses.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil || len(hw) != 6 {
		return "", errRefused
	}
	return hw.String(), nil
}
