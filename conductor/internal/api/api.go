// Package api owns Ferric's HTTP surface: the Ironic v1 REST API (discovery, nodes, ports, drivers, conductors),
// microversion negotiation, authentication, JSON Patch, and the single mapping from errors to Ironic's error bodies.
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
)

// Body size caps (Ironic's max_json_body_size and max_json_body_size_provision).
const (
	// maxBody bounds ordinary API bodies; reading stops there with a 413 rather than buffering a client's stream.
	maxBody = 1 << 20
	// maxProvisionBody is larger because a provision request may carry a configdrive (user data, files) inline.
	maxProvisionBody = 64 << 20
)

// Config configures the API server.
type Config struct {
	PublicURL string            // base URL for links, without a trailing slash
	Auth      Authenticator     // nil = noauth
	Extra     func(*mux.Router) // registers more routes (ramdisk endpoints, boot media); may be nil
	// Cluster is the conductor membership (GET /v1/conductors, each node's conductor field); nil: this process
	// is the only conductor.
	Cluster Membership
	// Bootc configures the image-mode host endpoints (bootc_host.go, bootc_inventory.go).
	Bootc BootcConfig
	// Measure wraps every request, outermost, the 404 and 405 answers included (the metrics' latency by route
	// template: mux has matched the route when it runs); may be nil.
	Measure mux.MiddlewareFunc
	// FleetLock configures the reboot coordinator's endpoints (fleetlock.go).
	FleetLock FleetLockConfig
	// Pages registers routes outside the API's versions (the web page under /ui/) once, on the root router, behind
	// the same middleware as every route (logging, version headers, authentication); may be nil.
	Pages func(*mux.Router)
}

// Membership is the part of the cluster view the API shows.
type Membership interface {
	Members() []cluster.Member
	Owner(uuid, group string) string
	DeadAfter() time.Duration
}

// Server serves the Ironic v1 API on top of one engine. It holds no request state: handlers may run
// concurrently, and every write that touches a node goes through the engine under the node's reservation.
type Server struct {
	cfg    Config
	eng    *engine.Engine
	log    *logrus.Entry
	router *mux.Router
	// nodeEnc writes nodes on the read paths (nodejson.go).
	nodeEnc *nodeEncoder
	// recs writes the other resources' lists (recjson.go).
	recs *recEncoders
	// flLimit counts refused FleetLock requests per client address (fleetlock.go).
	flLimit *failLimiter
}

// New builds the API server and its router. PublicURL's trailing slash is dropped so links can be built as
// PublicURL + "/v1/...".
func New(cfg Config, eng *engine.Engine, log *logrus.Entry) *Server {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{cfg: cfg, eng: eng, log: log, nodeEnc: newNodeEncoder(), recs: newRecEncoders(cfg.PublicURL),
		flLimit: newFailLimiter(failLimit, failWindow, failClientMax)}
	if s.cfg.FleetLock.Reporters == nil && eng != nil {
		s.cfg.FleetLock.Reporters = storeReporters{eng.Store()}
	}
	s.router = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// routes builds the router; Config.Extra adds routes owned by other packages (agent endpoints, boot media), with a
// version and without, like every v1 route.
func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	// No redirect between "/x" and "/x/": Ironic answers both paths directly, and a 301 would turn a POST into
	// a GET in some clients. Collections register both spellings instead.
	r.StrictSlash(false)
	// Order matters: logging wraps everything (so refused requests get a request id too); the version is
	// checked before credentials, so even a 401 carries the version headers.
	if s.cfg.Measure != nil {
		r.Use(s.cfg.Measure) // first: the latency includes logging, version negotiation and authentication
	}
	r.Use(s.logMiddleware)
	r.Use(versionMiddleware)
	r.Use(s.authMiddleware)
	// Unknown paths answer Ironic's 404 body; router-level handlers bypass r.Use, so the version is
	// negotiated here explicitly.
	r.NotFoundHandler = versionMiddleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, notFound("The resource could not be found."))
	}))
	// A known path with a verb it does not serve: 405 in Ironic's error format rather than mux's plain text.
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, &httpError{http.StatusMethodNotAllowed, "The method is not allowed for this resource."})
	})
	if m := s.cfg.Measure; m != nil {
		r.NotFoundHandler, r.MethodNotAllowedHandler = m(r.NotFoundHandler), m(r.MethodNotAllowedHandler)
	}

	r.HandleFunc("/", s.root).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1", s.v1).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/", s.v1).Methods(http.MethodGet, http.MethodHead)

	// The same routes twice: under /v1, and without a version, which Ironic routes to v1 (GET /nodes is
	// GET /v1/nodes; gophercloud's noauth client with an endpoint of http://host:6385 relies on it). Paths under
	// /v1 match first. Ironic's public routes are public under /v1 only (see publicPath): the unversioned
	// lookup and heartbeat need credentials, as in Ironic.
	v1 := r.PathPrefix("/v1").Subrouter()
	s.v1Routes(v1)
	s.fleetLockRoutes(v1)
	// Before the unversioned API, whose routes would otherwise be tried first for every page request.
	if s.cfg.Pages != nil {
		s.cfg.Pages(r.NewRoute().Subrouter())
	}
	s.v1Routes(r.NewRoute().Subrouter())
	return r
}

// v1Routes registers the v1 API on v (the /v1 subrouter or the unversioned one).
func (s *Server) v1Routes(v *mux.Router) {
	for _, p := range []string{"/nodes", "/nodes/"} {
		v.HandleFunc(p, s.listNodes).Methods(http.MethodGet)
		v.HandleFunc(p, s.createNode).Methods(http.MethodPost)
	}
	v.HandleFunc("/nodes/detail", s.listNodesDetail).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}", s.getNode).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}", s.patchNode).Methods(http.MethodPatch)
	v.HandleFunc("/nodes/{node}", s.deleteNode).Methods(http.MethodDelete)
	v.HandleFunc("/nodes/{node}/states", s.getStates).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/states/power", s.putPower).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/states/provision", s.putProvision).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/validate", s.validateNode).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/maintenance", s.putMaintenance).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/maintenance", s.deleteMaintenance).Methods(http.MethodDelete)
	v.HandleFunc("/nodes/{node}/management/boot_device", s.getBootDevice).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/management/boot_device", s.putBootDevice).Methods(http.MethodPut)
	v.HandleFunc("/nodes/{node}/management/boot_device/supported", s.getSupportedBootDevices).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/deploy_logs", s.getDeployLog).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/inventory", s.getInventory).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/ports", s.listNodePorts).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/ports/detail", s.listNodePortsDetail).Methods(http.MethodGet)

	for _, p := range []string{"/ports", "/ports/"} {
		v.HandleFunc(p, s.listPorts).Methods(http.MethodGet)
		v.HandleFunc(p, s.createPort).Methods(http.MethodPost)
	}
	v.HandleFunc("/ports/detail", s.listPortsDetail).Methods(http.MethodGet)
	v.HandleFunc("/ports/{port}", s.getPort).Methods(http.MethodGet)
	v.HandleFunc("/ports/{port}", s.patchPort).Methods(http.MethodPatch)
	v.HandleFunc("/ports/{port}", s.deletePort).Methods(http.MethodDelete)

	for _, p := range []string{"/drivers", "/drivers/"} {
		v.HandleFunc(p, s.listDrivers).Methods(http.MethodGet)
	}
	v.HandleFunc("/drivers/{driver}", s.getDriver).Methods(http.MethodGet)
	v.HandleFunc("/drivers/{driver}/properties", s.getDriverProperties).Methods(http.MethodGet)
	v.HandleFunc("/lookup", s.lookup).Methods(http.MethodGet)
	v.HandleFunc("/heartbeat/{node}", s.heartbeat).Methods(http.MethodPost)
	v.HandleFunc("/continue_inspection", s.continueInspection).Methods(http.MethodPost)
	s.traitsRoutes(v)
	s.deployTemplatesRoutes(v)
	s.chassisRoutes(v)
	s.allocationsRoutes(v)
	s.portgroupsRoutes(v)
	s.nodeExtrasRoutes(v)
	s.biosRoutes(v)
	s.volumeRoutes(v)
	s.vmediaRoutes(v)
	s.fleetLockGroupRoutes(v)
	s.bootcHostRoutes(v)
	s.bootcInventoryRoutes(v)
	s.bootcActionRoutes(v)
	s.bootcRolloutRoutes(v)
	if s.cfg.Extra != nil {
		s.cfg.Extra(v)
	}
}

// statusRecorder remembers the status for the access log. It starts at 200 because a handler that only
// writes a body never calls WriteHeader.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

// WriteHeader records code and passes it on.
func (s *statusRecorder) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

// logMiddleware gives every response an Openstack-Request-Id header (clients quote it in bug reports, as
// with Ironic) and logs method, path, status and duration at debug level.
func (s *Server) logMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		w.Header().Set("Openstack-Request-Id", "req-"+newUUID())
		next.ServeHTTP(rec, r)
		if !s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			return // the access log is at debug level: build no fields for nothing
		}
		// The query may hold an agent token: log the path only.
		s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": rec.code,
			"ms": time.Since(start).Milliseconds()}).Debug("request")
	})
}

// root answers GET / with Ironic's version discovery document: one version (v1) with the min and max
// microversions this server speaks. It needs no credentials (see publicPath).
func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	o := newOrdered()
	o.set("name", "OpenStack Ironic API")
	o.set("description", "Ironic is an OpenStack project which enables the provision and management of baremetal machines.")
	o.set("default_version", versionDoc(s.cfg.PublicURL))
	o.set("versions", []any{versionDoc(s.cfg.PublicURL)})
	writeJSON(w, http.StatusOK, o)
}

// v1 answers GET /v1 with the resource index. Resources appear only from the microversion that introduced
// them, so a client pinned to an old version sees the list that version had.
func (s *Server) v1(w http.ResponseWriter, r *http.Request) {
	base := s.cfg.PublicURL
	o := newOrdered()
	o.set("id", "v1")
	o.set("links", []map[string]string{{"href": base + "/v1/", "rel": "self"},
		{"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html", "rel": "describedby", "type": "text/html"}})
	o.set("media_types", map[string]string{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"})
	// Ironic's order: the four base resources, then each versioned one from its microversion (events and the
	// newer ones are not served, so not listed).
	res := []string{"chassis", "nodes", "ports", "drivers"}
	for _, c := range []struct {
		min   int
		names []string
	}{{23, []string{"portgroups"}}, {32, []string{"volume"}}, {22, []string{"lookup", "heartbeat"}}, {49, []string{"conductors"}},
		{52, []string{"allocations"}}, {55, []string{"deploy_templates"}}, {82, []string{"shards"}}} {
		if versionOf(r) >= c.min {
			res = append(res, c.names...)
		}
	}
	for _, name := range res {
		o.set(name, []map[string]string{{"href": base + "/v1/" + name + "/", "rel": "self"}, {"href": base + "/" + name + "/", "rel": "bookmark"}})
	}
	o.set("version", versionDoc(base))
	writeJSON(w, http.StatusOK, o)
}

// decodeBody reads a JSON body (capped at limit) into v; errors become 400/413 through status().
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return err
	}
	// An empty body would unmarshal to nothing and let a create run with all defaults: refuse it by name.
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequest("The request body is empty; send a JSON document")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("Invalid JSON in request body: %v", err)
	}
	return nil
}

// readBody reads the raw body capped at limit, for handlers that parse it themselves (JSON Patch, raw
// lists); an oversized body returns *http.MaxBytesError, which status maps to 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// location sets the Location header of a 201 to the new resource's v1 URL (path is relative to /v1/).
func (s *Server) location(w http.ResponseWriter, path string) {
	w.Header().Set("Location", fmt.Sprintf("%s/v1/%s", s.cfg.PublicURL, path))
}

// requireVersion answers 404 for features newer than the request's version, as Ironic does for unknown resources.
func requireVersion(r *http.Request, min int) error {
	if versionOf(r) < min {
		return notFound("The resource could not be found.")
	}
	return nil
}
