package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/rollout"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

const (
	rolloutOld = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	rolloutNew = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// apiHost is a simulated image-mode host that speaks the reporter protocol to the real handlers, as ferric-hostd
// does: it polls desired, reports its action's progress, reboots once allowed and reports the new booted digest.
type apiHost struct {
	t            *testing.T
	srv          http.Handler
	node, cred   string
	booted, prev string
	states       map[string]string // action id -> the last state reported
}

func (h *apiHost) post(path, body string) {
	rec := host(h.srv, http.MethodPost, strings.NewReplacer("{node}", h.node).Replace(path), h.cred, body)
	require.Equal(h.t, http.StatusNoContent, rec.Code, rec.Body.String())
}

func (h *apiHost) report() {
	h.post(bootchost.PathReport, reportBody(bootcStatus("reg.example/os", h.booted, "", false), "sim"))
}

// poll is one round of the host's loop.
func (h *apiHost) poll() {
	rec := host(h.srv, http.MethodGet, strings.NewReplacer("{node}", h.node).Replace(bootchost.PathDesired), h.cred, "")
	require.Equal(h.t, http.StatusOK, rec.Code, rec.Body.String())
	var d bootchost.Desired
	require.NoError(h.t, json.Unmarshal(rec.Body.Bytes(), &d))
	a := d.Action
	if a == nil {
		return
	}
	path := strings.NewReplacer("{action}", a.ID).Replace(bootchost.PathAction)
	move := func(state string) {
		h.post(path, `{"state":"`+state+`"}`)
		h.states[a.ID] = state
	}
	switch h.states[a.ID] {
	case "":
		move(bootchost.StateRunning)
		move(bootchost.StateStaged)
	case bootchost.StateStaged:
		if !d.Action.RebootAllowed {
			return
		}
		move(bootchost.StateRebooting)
		_, digest, _ := strings.Cut(a.Image, "@")
		if a.Kind == bootchost.ActionRollback {
			digest = h.prev
		}
		h.prev, h.booted = h.booted, digest
		h.report()
		move(bootchost.StateDone)
	}
}

func operatorJSON(srv http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.SetBasicAuth("op", "pw")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// TestBootcRolloutsAPI: a rollout created through the API is planned into waves, driven by the controller while
// hosts answer through the reporter endpoints, and ends with every host on the target; show lists the waves with
// each node's status; wrong requests are refused naming the field; a dead end is refused as a target and as a
// switch; pause, resume and abort answer by the rollout's state.
func TestBootcRolloutsAPI(t *testing.T) {
	for name, open := range bootcStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			srv := bootcServer(t, st, nil)
			var hosts []*apiHost
			for i := range 4 {
				n, cred := bootcNode(t, st, "roll-"+string(rune('a'+i)))
				h := &apiHost{t: t, srv: srv, node: n.UUID, cred: cred, booted: rolloutOld, states: map[string]string{}}
				h.report()
				hosts = append(hosts, h)
			}
			target := "reg.example/os@" + rolloutNew
			rec := operatorJSON(srv, http.MethodPost, "/v1/bootc/rollouts", `{"image":"`+target+`","waves":{"size":3},
				"max_unavailable":2,"health_deadline":"5m","dead_ends":["reg.example/os@sha256:dead"]}`)
			require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			var created struct {
				UUID  string `json:"uuid"`
				State string `json:"state"`
				Waves []struct {
					Nodes []struct {
						NodeUUID string `json:"node_uuid"`
						State    string `json:"state"`
					} `json:"nodes"`
				} `json:"waves"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &created))
			require.Len(t, created.Waves, 2)
			assert.Len(t, created.Waves[0].Nodes, 3)
			assert.Len(t, created.Waves[1].Nodes, 1)

			ctl := rollout.New(rollout.Config{Store: st, Log: srv.log})
			require.Eventually(t, func() bool {
				require.NoError(t, ctl.Tick(ctx))
				for _, h := range hosts {
					h.poll()
				}
				r, err := st.GetBootcRollout(ctx, created.UUID)
				require.NoError(t, err)
				return r.State == rollout.StateDone
			}, 30*time.Second, time.Millisecond)
			for _, h := range hosts {
				assert.Equal(t, rolloutNew, h.booted)
			}
			rec = operator(srv, http.MethodGet, "/v1/bootc/rollouts/"+created.UUID)
			require.Equal(t, http.StatusOK, rec.Code)
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &created))
			assert.Equal(t, rollout.StateDone, created.State)
			for _, w := range created.Waves {
				for _, n := range w.Nodes {
					assert.Equal(t, rollout.NodeHealthy, n.State)
				}
			}
			rec = operator(srv, http.MethodGet, "/v1/bootc/rollouts")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Contains(t, rec.Body.String(), created.UUID)

			for _, op := range []string{"pause", "resume", "abort"} {
				rec = operatorJSON(srv, http.MethodPost, "/v1/bootc/rollouts/"+created.UUID+"/"+op, "")
				assert.Equal(t, http.StatusConflict, rec.Code, op)
				assert.Contains(t, faultString(t, rec), "is done", op)
			}
			rec = operatorJSON(srv, http.MethodPost, "/v1/bootc/rollouts/no-such/pause", "")
			assert.Equal(t, http.StatusNotFound, rec.Code)

			// The dead end declared above is refused as a switch target too.
			rec = operatorJSON(srv, http.MethodPost, "/v1/nodes/"+hosts[0].node+"/bootc/actions",
				`{"kind":"switch","image":"reg.example/os@sha256:dead"}`)
			assert.Equal(t, http.StatusConflict, rec.Code)
			assert.Contains(t, faultString(t, rec), "dead end")
			_, err := st.OpenBootcAction(ctx, hosts[0].node)
			require.ErrorIs(t, err, store.ErrNotFound, "a refused switch queues nothing")
		})
	}
}

// TestBootcRolloutsRefused: each wrong request is a 400 naming its field, and nothing is stored.
func TestBootcRolloutsRefused(t *testing.T) {
	st := bootcStores(t)["sqlite"](t)
	srv := bootcServer(t, st, nil)
	n, _ := bootcNode(t, st, "refused")
	pinned := `"image":"reg.example/os@` + rolloutNew + `"`
	tests := map[string]struct {
		body, want string
		code       int
	}{
		"no image":          {`{"waves":{"size":1}}`, `"image" is required`, 400},
		"no waves":          {`{` + pinned + `}`, `"waves"`, 400},
		"bad duration":      {`{` + pinned + `,"waves":{"size":1},"wait_between":"soon"}`, `wait_between`, 400},
		"bad window":        {`{` + pinned + `,"waves":{"size":1},"windows":["nightly"]}`, `window`, 400},
		"unpinned barrier":  {`{` + pinned + `,"waves":{"size":1},"barriers":["reg.example/os:41"]}`, `barriers`, 400},
		"dead-end target":   {`{` + pinned + `,"waves":{"size":1},"dead_ends":["x@` + rolloutNew + `"]}`, `dead_ends`, 400},
		"unknown node":      {`{` + pinned + `,"waves":{"size":1},"selector":{"nodes":["nope"]}}`, `could not be found`, 404},
		"no node to pin":    {`{"image":"reg.example/os:42","waves":{"size":1},"selector":{"owner":"nobody"}}`, `matches no node`, 400},
		"cannot reach pins": {`{"image":"reg.example/os:42","waves":{"size":1},"selector":{"nodes":["` + n.UUID + `"]}}`, `repo@sha256`, 409},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := operatorJSON(srv, http.MethodPost, "/v1/bootc/rollouts", tc.body)
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Contains(t, faultString(t, rec), tc.want)
		})
	}
	list, err := st.ListBootcRollouts(context.Background(), "")
	require.NoError(t, err)
	assert.Empty(t, list)
	req := httptest.NewRequest(http.MethodGet, "/v1/bootc/rollouts", nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "normal API auth")
}
