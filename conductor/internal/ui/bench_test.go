package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/conductor/internal/ui"
)

// BenchmarkPages renders the nodes page (one page of 50 and of 500) and the images page over 1,000 image-mode
// hosts on SQLite, two images, every host reported; the stale resolver answers from its cache after the first
// view, as the conductor's background refresh keeps it warm.
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "f.db"))
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	for i := 0; i < 1000; i++ {
		n := &store.Node{UUID: uuid.NewString(), Name: fmt.Sprintf("host-%04d", i), Driver: "fake-hardware",
			ProvisionState: "active", CreatedAt: time.Now().UTC()}
		require.NoError(b, st.CreateNode(ctx, n))
		_, hash, err := fleet.NewCredential()
		require.NoError(b, err)
		require.NoError(b, st.SetBootcCredential(ctx, n.UUID, hash))
		ref := fmt.Sprintf("registry.example/os:%d", i%2)
		require.NoError(b, st.PutBootcReport(ctx, n.UUID, store.BootcReport{Status: []byte(`{}`), SpecRef: ref,
			BootedRef: ref, BootedDigest: fmt.Sprintf("sha256:%064d", i%2)}))
	}
	stale := fleet.NewResolver(func(context.Context, *store.Node, string) (string, error) {
		return fmt.Sprintf("sha256:%064d", 1), nil
	}, time.Hour)
	l := logrus.New()
	l.SetOutput(io.Discard)
	pages, err := ui.New(ui.Config{Store: st, Stale: stale}, logrus.NewEntry(l))
	require.NoError(b, err)
	r := mux.NewRouter()
	pages.Register(r)
	for _, path := range []string{"/ui/", "/ui/?limit=500", "/ui/images"} {
		b.Run(path, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				require.Equal(b, http.StatusOK, rec.Code)
			}
		})
	}
}
