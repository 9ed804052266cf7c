package redfish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gorilla/mux"
)

// MediaServer serves per-node boot ISOs at /v1/boot-media/{id}.iso for BMCs to fetch. The endpoint is public (a
// BMC has no API credentials) and each ISO holds its node's agent token, so the identifier is the capability: 192
// random bits that live only in this server (the ISO's file name) and in the URL handed to the BMC, never in the
// node record, so no API response can show it. An ISO is served only while its node is in a state that boots the
// agent (Allowed), and is deleted when the agent boot is cleaned up (every failure path does that too).
type MediaServer struct {
	dir     string
	allowed func(ctx context.Context, node string) bool

	mu     sync.Mutex
	byID   map[string]string // id -> node UUID
	byNode map[string]string // node UUID -> id
}

// mediaIDLen is the length of an identifier: 24 random bytes, hex.
const mediaIDLen = 48

// NewMediaServer keeps ISOs in dir (created 0700) and serves one only while allowed(node) is true. ISOs left by an
// earlier run are found again from their file names (<node>.<id>.iso): a node still waiting for its agent after a
// conductor restart keeps its media; Prune drops the others.
func NewMediaServer(dir string, allowed func(ctx context.Context, node string) bool) *MediaServer {
	m := &MediaServer{dir: dir, allowed: allowed, byID: map[string]string{}, byNode: map[string]string{}}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		node, id, ok := parseMediaName(e.Name())
		if !ok {
			continue
		}
		if old, dup := m.byNode[node]; dup { // two ISOs of one node: keep neither served
			os.Remove(filepath.Join(dir, mediaName(node, old)))
			delete(m.byID, old)
		}
		m.byID[id], m.byNode[node] = node, id
	}
	return m
}

func mediaName(node, id string) string { return node + "." + id + ".iso" }

func parseMediaName(name string) (node, id string, ok bool) {
	base, found := strings.CutSuffix(name, ".iso")
	if !found {
		return "", "", false
	}
	node, id, found = strings.Cut(base, ".")
	if !found || !validID(id) || node == "" {
		return "", "", false
	}
	return node, id, true
}

func validID(id string) bool {
	if len(id) != mediaIDLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// add stores a new ISO for node, replacing any earlier one, and returns its identifier.
func (m *MediaServer) add(node string, data []byte) (string, error) {
	b := make([]byte, mediaIDLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return "", fmt.Errorf("boot media directory: %w", err)
	}
	m.RemoveNode(node)
	if err := os.WriteFile(filepath.Join(m.dir, mediaName(node, id)), data, 0o600); err != nil {
		return "", fmt.Errorf("write the boot ISO: %w", err)
	}
	m.mu.Lock()
	m.byID[id], m.byNode[node] = node, id
	m.mu.Unlock()
	return id, nil
}

// RemoveNode stops serving the node's ISO and deletes it.
func (m *MediaServer) RemoveNode(node string) {
	m.mu.Lock()
	id, ok := m.byNode[node]
	delete(m.byNode, node)
	delete(m.byID, id)
	m.mu.Unlock()
	if ok {
		os.Remove(filepath.Join(m.dir, mediaName(node, id)))
	}
}

// Current returns the identifier of the node's ISO (tests and the conductor's own bookkeeping; never an API).
func (m *MediaServer) Current(node string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byNode[node]
	return id, ok
}

// Prune deletes the ISOs of nodes that may not be served now (after a restart: nodes that failed or finished
// while the conductor was down, or were deleted).
func (m *MediaServer) Prune(ctx context.Context) int {
	m.mu.Lock()
	nodes := make([]string, 0, len(m.byNode))
	for n := range m.byNode {
		nodes = append(nodes, n)
	}
	m.mu.Unlock()
	k := 0
	for _, n := range nodes {
		if !m.allowed(ctx, n) {
			m.RemoveNode(n)
			k++
		}
	}
	return k
}

// Register mounts the media on r (the API's /v1 router, and its unversioned twin) at boot-media/{file}.
func (m *MediaServer) Register(r *mux.Router) {
	r.Handle("/boot-media/{file}", m).Methods(http.MethodGet, http.MethodHead)
}

// ServeHTTP serves GET/HEAD /v1/boot-media/{id}.iso (routed by Register). Every refusal is the same 404, so that
// a guess learns nothing (neither whether the identifier exists nor the node's state).
func (m *MediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(mux.Vars(r)["file"], ".iso")
	if !ok || !validID(id) {
		http.NotFound(w, r)
		return
	}
	m.mu.Lock()
	node, known := m.byID[id]
	m.mu.Unlock()
	if !known || !m.allowed(r.Context(), node) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFile(w, r, filepath.Join(m.dir, mediaName(node, id)))
}
