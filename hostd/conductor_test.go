package hostd

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/bootchost"
)

// conductor is a small in-test implementation of the bootchost protocol with real state: the credentials it
// accepts (a rotation keeps the old one until the new one is used), the reports it received, one action queue
// and the action updates. It serves HTTPS; caPEM is its certificate, for HostConfig.CACert.
type conductor struct {
	srv   *httptest.Server
	caPEM string
	node  string

	mu        sync.Mutex
	creds     map[string]bool
	newCred   string
	seenCreds []string
	reports   []bootchost.Report
	action    *bootchost.Action
	updates   map[string][]bootchost.ActionUpdate
	rotate    bool
	rotations int
	// FleetLock: one reboot slot per group, its holder's id; locks lists the calls in order ("pre-reboot:id").
	slots map[string]string
	locks []string
}

func startConductor(t *testing.T, node, cred string) *conductor {
	c := &conductor{node: node, creds: map[string]bool{cred: true}, updates: map[string][]bootchost.ActionUpdate{},
		slots: map[string]string{}}
	r := mux.NewRouter()
	r.HandleFunc(bootchost.PathReport, c.auth(c.report)).Methods(http.MethodPost)
	r.HandleFunc(bootchost.PathDesired, c.auth(c.desired)).Methods(http.MethodGet)
	r.HandleFunc(bootchost.PathAction, c.auth(c.actionUpdate)).Methods(http.MethodPost)
	r.HandleFunc(bootchost.PathCredential, c.auth(c.credential)).Methods(http.MethodPost)
	r.HandleFunc(bootchost.PathPreReboot, c.fleetLock(true)).Methods(http.MethodPost)
	r.HandleFunc(bootchost.PathSteadyState, c.fleetLock(false)).Methods(http.MethodPost)
	c.srv = httptest.NewUnstartedServer(r)
	c.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	c.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw}))
	return c
}

// auth checks the node and the bearer credential; the first use of a rotated credential revokes the old one.
func (c *conductor) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c.mu.Lock()
		valid := ok && mux.Vars(r)["node"] == c.node && c.creds[cred]
		if valid {
			c.seenCreds = append(c.seenCreds, cred)
			if cred == c.newCred {
				c.creds = map[string]bool{cred: true}
				c.newCred = ""
			}
		}
		c.mu.Unlock()
		if !valid {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (c *conductor) report(w http.ResponseWriter, r *http.Request) {
	var rep bootchost.Report
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, bootchost.MaxReportBytes)).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := bootchost.Parse(rep.Status); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reports = append(c.reports, rep)
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// desired hands out the queued action until it reaches a final state.
func (c *conductor) desired(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	d := bootchost.Desired{PollInterval: 1, RotateCredential: c.rotate}
	if c.action != nil {
		a := *c.action
		d.Action = &a
	}
	c.mu.Unlock()
	json.NewEncoder(w).Encode(d)
}

func (c *conductor) actionUpdate(w http.ResponseWriter, r *http.Request) {
	var u bootchost.ActionUpdate
	if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := mux.Vars(r)["action"]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.action == nil || c.action.ID != id {
		http.Error(w, "no such action", http.StatusNotFound)
		return
	}
	c.updates[id] = append(c.updates[id], u)
	if u.State == bootchost.StateDone || u.State == bootchost.StateFailed {
		c.action = nil
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *conductor) credential(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	c.rotations++
	c.newCred = "cred-rotated-" + string(rune('a'+c.rotations))
	c.creds[c.newCred] = true
	c.rotate = false
	cred := c.newCred
	c.mu.Unlock()
	json.NewEncoder(w).Encode(bootchost.CredentialRotation{Credential: cred})
}

// fleetLock serves the FleetLock protocol with one slot per group: the reporter's Bearer credential for its own
// node id, the protocol header, 409 while another id holds the slot.
func (c *conductor) fleetLock(take bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req bootchost.FleetLockRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Header.Get("fleet-lock-protocol") != "true" {
			http.Error(w, `{"kind":"bad_request","value":"not a FleetLock request"}`, http.StatusBadRequest)
			return
		}
		cred, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		id, group := req.ClientParams.ID, req.ClientParams.Group
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.creds[cred] || id != c.node {
			http.Error(w, `{"kind":"unauthorized","value":"no"}`, http.StatusUnauthorized)
			return
		}
		holder := c.slots[group]
		switch {
		case take && holder != "" && holder != id:
			http.Error(w, `{"kind":"failed_lock","value":"held by `+holder+`"}`, http.StatusConflict)
			return
		case take:
			c.slots[group] = id
			c.locks = append(c.locks, "pre-reboot:"+group)
		case holder == id:
			delete(c.slots, group)
			c.locks = append(c.locks, "steady-state:"+group)
		}
		w.WriteHeader(http.StatusOK)
	}
}

// hold gives group's slot to another id ("" frees it); lockCalls lists the reporter's granted calls.
func (c *conductor) hold(group, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		delete(c.slots, group)
		return
	}
	c.slots[group] = id
}

func (c *conductor) lockCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.locks...)
}

// queue hands out a.
func (c *conductor) queue(a bootchost.Action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.action = &a
}

// states lists the states reported for action id.
func (c *conductor) states(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, u := range c.updates[id] {
		out = append(out, u.State)
	}
	return out
}

func (c *conductor) lastUpdate(id string) bootchost.ActionUpdate {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.updates[id]
	if len(u) == 0 {
		return bootchost.ActionUpdate{}
	}
	return u[len(u)-1]
}

// lastReport parses the newest report.
func (c *conductor) lastReport() (bootchost.Report, *bootchost.Host, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reports) == 0 {
		return bootchost.Report{}, nil, 0
	}
	rep := c.reports[len(c.reports)-1]
	h, _ := bootchost.Parse(rep.Status)
	return rep, h, len(c.reports)
}
