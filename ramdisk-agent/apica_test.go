package agent

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPICASources(t *testing.T) {
	dir := t.TempDir()
	const fromMedia = "-----BEGIN CERTIFICATE-----\nbWVkaWE=\n-----END CERTIFICATE-----\n"
	const fromFlag = "-----BEGIN CERTIFICATE-----\nZmxhZw==\n-----END CERTIFICATE-----\n"
	var cfg Config
	f := filepath.Join(dir, "agent.json")
	require.NoError(t, os.WriteFile(f, []byte(`{"api_url":"https://10.0.2.2:6385","api_ca":"-----BEGIN CERTIFICATE-----\nbWVkaWE=\n-----END CERTIFICATE-----\n"}`), 0o600))
	require.NoError(t, ApplyFile(&cfg, f))
	assert.Equal(t, fromMedia, cfg.APICA, "api_ca from agent.json")

	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte(fromFlag), 0o600))
	require.NoError(t, ApplyCAFile(&cfg, ca))
	assert.Equal(t, fromFlag, cfg.APICA, "--api-ca wins over agent.json")

	err := ApplyCAFile(&cfg, filepath.Join(dir, "missing.pem"))
	assert.ErrorContains(t, err, "--api-ca")
	assert.ErrorContains(t, err, "missing.pem")
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("junk"), 0o600))
	assert.ErrorContains(t, ApplyCAFile(&cfg, junk), "no PEM certificate")
	assert.Equal(t, fromFlag, cfg.APICA, "a refused file changes nothing")
}

// TestAgentVerifiesTheConductor runs the agent against an https conductor stand-in: without api_ca it stops at
// lookup with an error naming the URL and the certificate problem (no token ever sent); with it, it heartbeats.
func TestAgentVerifiesTheConductor(t *testing.T) {
	beats := make(chan string, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"node": {"uuid": "0862e37f-c229-4fe3-aa45-d637b29e7b5e"}, "config": {"heartbeat_timeout": 300}}`))
	})
	mux.HandleFunc("/v1/heartbeat/", func(w http.ResponseWriter, r *http.Request) {
		beats <- r.URL.Path
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	run := func(ctx context.Context, ca string) error {
		dir := t.TempDir()
		log := logrus.New()
		log.SetOutput(io.Discard)
		// A podman socket that does not exist: this test needs no podman, and the agent starts none.
		cfg := Config{APIURL: srv.URL, APICA: ca, Token: "0123456789abcdef0123456789abcdef", Listen: "127.0.0.1:0",
			Advertise: "127.0.0.1:9", InsecureHTTP: true, PodmanSocket: "unix://" + filepath.Join(dir, "none.sock"),
			StateDir: filepath.Join(dir, "state"), LookupTimeout: time.Millisecond, PowerOff: "exit"}
		return Run(ctx, cfg, logrus.NewEntry(log))
	}

	err := run(context.Background(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), srv.URL)
	assert.Contains(t, err.Error(), "certificate signed by unknown authority")
	assert.Len(t, beats, 0)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, caPEM) }()
	select {
	case p := <-beats:
		assert.Equal(t, "/v1/heartbeat/0862e37f-c229-4fe3-aa45-d637b29e7b5e", p)
	case err := <-done:
		t.Fatalf("agent ended before its first heartbeat: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no heartbeat within 20 s")
	}
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop within 20 s")
	}
}
