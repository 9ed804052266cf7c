package vbmc

// Routing of the Redfish API (gorilla/mux, the house rule for every HTTP surface). The router keeps the answers
// of the earlier hand-written one, which sushy, gofish and the conductor's tests rely on:
//   - one trailing slash is ignored (Redfish links such as "/redfish/v1/" end in one); trimSlash strips it
//     before routing instead of StrictSlash, whose 301 would turn a POST into a GET in some clients;
//   - /redfish, the service root and the session login are public; anything else, an unknown path too, needs
//     credentials first (401 with WWW-Authenticate), so that nothing is revealed before authentication;
//   - an unknown path and a wrong method are both a 404 with a Redfish error body, as before; only a session
//     and ResetBios answer 405 (their handlers say which method to use), from routes of their own that take
//     any method: mux may report a wrong method as not found once a later route's prefix matched, harmless
//     here since both answers are the same 404;
//   - a request about a VM holds that VM's lock only (lockVM), and an unknown VM is named in the 404.

import (
	"context"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// vmHandler serves one resource of a VM: m is the VM (its lock held) and sub the path under the VM's
// Systems/Managers/Chassis resource, without a leading slash ("" for the resource itself, "Bios/Settings").
type vmHandler func(w http.ResponseWriter, r *http.Request, m *vm, sub string)

// vmCtxKey is the context key of the request's vmTarget.
type vmCtxKey struct{}

// vmTarget is what lockVM found for a request.
type vmTarget struct {
	m   *vm
	sub string
}

// newRouter builds the Redfish router: the public routes first, then every other one behind requireAuth.
func (b *BMC) newRouter() http.Handler {
	r := mux.NewRouter().SkipClean(true) // no 301 for "//" paths: they were plain 404s
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { redfishError(w, http.StatusNotFound, "no such resource") })
	// Router middleware does not run for these two handlers: they authenticate themselves.
	r.NotFoundHandler = b.requireAuth(notFound)
	r.MethodNotAllowedHandler = b.requireAuth(notFound)

	r.HandleFunc("/redfish", b.versions)
	r.HandleFunc("/redfish/v1", b.serviceRoot).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/redfish/v1", notFound) // another method on the root: a 404 without credentials, as before
	r.HandleFunc(sessionsPath, b.login).Methods(http.MethodPost)

	private := r.NewRoute().Subrouter()
	private.Use(b.requireAuth)
	b.routes(private, notFound)
	return trimSlash(r)
}

// routes registers the authenticated resources, one line per resource and method. A new VM resource is a
// vmHandler registered on sys, mgr or chassis with b.onVM; a new service-level resource goes on p.
func (b *BMC) routes(p *mux.Router, notFound http.Handler) {
	methodsGet := []string{http.MethodGet, http.MethodHead} // GET routes answer HEAD too (net/http drops the body)
	p.HandleFunc("/redfish/v1/{kind:Systems|Managers|Chassis}", b.vmCollection).Methods(methodsGet...)
	p.HandleFunc("/redfish/v1/SessionService", b.sessionService).Methods(methodsGet...)
	p.HandleFunc(sessionsPath, b.listSessions).Methods(methodsGet...)
	p.HandleFunc(sessionsPath+"/{id}", b.getSession).Methods(methodsGet...)
	p.HandleFunc(sessionsPath+"/{id}", b.deleteSession).Methods(http.MethodDelete)
	p.HandleFunc(sessionsPath+"/{id}", b.sessionOtherMethod)
	p.HandleFunc(updateServicePath, b.updateService).Methods(methodsGet...)
	p.HandleFunc(updateServicePath+"/FirmwareInventory", b.firmwareInventory).Methods(methodsGet...)
	p.HandleFunc(updateServicePath+"/FirmwareInventory/{id}", b.firmware).Methods(methodsGet...)
	registryRoutes(p, methodsGet)

	sys := b.vmRouter(p, "Systems", notFound)
	sys.Handle("", b.onVM(b.getSystem)).Methods(methodsGet...)
	sys.Handle("", b.onVM(b.patchBoot)).Methods(http.MethodPatch)
	sys.Handle("/Actions/ComputerSystem.Reset", b.onVM(b.resetSystem)).Methods(http.MethodPost)
	sys.Handle("/Bios", b.onVM(b.getBios)).Methods(methodsGet...)
	sys.Handle("/Bios/Settings", b.onVM(b.getBiosSettings)).Methods(methodsGet...)
	sys.Handle("/Bios/Settings", b.onVM(b.patchBiosSettings)).Methods(http.MethodPatch)
	sys.Handle("/Bios/Actions/Bios.ResetBios", b.onVM(b.resetBios)) // any method: a 405 names POST
	b.storageRoutes(sys, methodsGet)                                // before the hardware paths: /Storage lists the RAID controller too
	for _, hw := range hardwarePaths() {
		sys.Handle(hw, b.onVM(b.getHardware)).Methods(methodsGet...)
	}

	mgr := b.vmRouter(p, "Managers", notFound)
	mgr.Handle("", b.onVM(b.getManager)).Methods(methodsGet...)
	mgr.Handle("/VirtualMedia", b.onVM(b.listVirtualMedia)).Methods(methodsGet...)
	mgr.Handle("/VirtualMedia/Cd", b.onVM(b.getVirtualMedia)).Methods(methodsGet...)
	mgr.Handle("/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia", b.onVM(b.insertAction(cdSlot))).Methods(http.MethodPost)
	mgr.Handle("/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia", b.onVM(b.ejectAction(cdSlot))).Methods(http.MethodPost)
	mgr.Handle("/VirtualMedia/Usb", b.onVM(b.getUsb)).Methods(methodsGet...)
	mgr.Handle("/VirtualMedia/Usb/Actions/VirtualMedia.InsertMedia", b.onVM(b.insertAction(usbSlot))).Methods(http.MethodPost)
	mgr.Handle("/VirtualMedia/Usb/Actions/VirtualMedia.EjectMedia", b.onVM(b.ejectAction(usbSlot))).Methods(http.MethodPost)

	chassis := b.vmRouter(p, "Chassis", notFound)
	chassis.Handle("", b.onVM(b.getChassis)).Methods(methodsGet...)
}

// vmRouter returns the subrouter of the resources under /redfish/v1/<kind>/{vm}. Its routes run under lockVM;
// a path or method it does not serve is a 404 that names an unknown VM, as before.
func (b *BMC) vmRouter(p *mux.Router, kind string, notFound http.Handler) *mux.Router {
	v := p.PathPrefix("/redfish/v1/" + kind + "/{vm}").Subrouter()
	lock := b.lockVM("/redfish/v1/" + kind + "/")
	v.Use(lock)
	// A subrouter's own not-found answer skips every middleware (the parent's requireAuth too).
	v.NotFoundHandler = b.requireAuth(lock(notFound))
	v.MethodNotAllowedHandler = v.NotFoundHandler
	return v
}

// requireAuth refuses a request without HTTP Basic credentials or a live session's X-Auth-Token.
func (b *BMC) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.authenticated(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="ferric-vbmc"`)
			redfishError(w, http.StatusUnauthorized, "authentication required: HTTP Basic, or X-Auth-Token of a live session (POST "+sessionsPath+")")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// lockVM returns the middleware that finds the route's VM (404 when there is none) and holds its lock while the
// handler runs: requests about one VM are serialized, and a slow one (a download, a graceful restart) never
// holds up another VM. prefix is the path up to the VM's name; the rest is the handler's sub.
func (b *BMC) lockVM(prefix string) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := mux.Vars(r)["vm"]
			m, ok := b.vms[name]
			if !ok {
				redfishError(w, http.StatusNotFound, "no such resource: "+name)
				return
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			sub := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, prefix+name), "/")
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), vmCtxKey{}, vmTarget{m, sub})))
		})
	}
}

// onVM adapts a vmHandler to a route under lockVM.
func (b *BMC) onVM(h vmHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := r.Context().Value(vmCtxKey{}).(vmTarget)
		h(w, r, t.m, t.sub)
	})
}

// trimSlash strips one trailing slash from the path (not from "/") before routing.
func trimSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			u := *r.URL
			u.Path, u.RawPath = strings.TrimSuffix(p, "/"), strings.TrimSuffix(u.RawPath, "/")
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}
