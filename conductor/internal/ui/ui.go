// Package ui owns the conductor's read-only web page under /ui/: the nodes with their states and live deploy
// progress, the fleet's booted images with the stale flag, one node with its image-mode report and day-2 actions,
// the FleetLock reboot groups, and the rollouts with their waves and each node's status. Pages are rendered on the server from embedded templates (html/template escapes
// every value) with one embedded stylesheet and no script; nothing on them changes anything. The routes are
// registered through api.Config.Pages, so the API's authentication applies to every page and asset.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Store is the part of the conductor's store the pages read.
type Store interface {
	ListNodes(ctx context.Context, f store.NodeFilter, o store.ListOptions) ([]*store.Node, error)
	GetNode(ctx context.Context, ident string) (*store.Node, error)
	NodeNames(ctx context.Context, uuids []string) (map[string]string, error)
	BootcReporter(ctx context.Context, nodeUUID string) (*store.BootcReporter, error)
	BootcReporters(ctx context.Context, nodeUUIDs []string) (map[string]*store.BootcReporter, error)
	ListBootcImages(ctx context.Context, digest string) ([]store.BootcImage, error)
	ListBootcNodes(ctx context.Context, digest string, o store.ListOptions) ([]store.BootcNode, error)
	ListBootcActions(ctx context.Context, nodeUUID string, limit int) ([]*store.BootcAction, error)
	ListFleetLockGroups(ctx context.Context) ([]*store.FleetLockGroup, error)
	ListBootcRollouts(ctx context.Context, state string) ([]*store.BootcRollout, error)
	GetBootcRollout(ctx context.Context, id string) (*store.BootcRollout, error)
	ListBootcRolloutNodes(ctx context.Context, id string, wave int) ([]store.BootcRolloutNode, error)
}

// Config configures the pages.
type Config struct {
	Store Store
	// Stale is the images view's tag resolver, the API's own (api.BootcConfig.Stale); nil: stale is unknown.
	Stale *fleet.Resolver
	// DefaultSlots is --fleetlock-slots, shown for groups without their own count (0 = 1, as FleetLock counts).
	DefaultSlots int
	// Refresh is how often the nodes pages reload themselves (a meta refresh; default 10 s, negative: never).
	Refresh time.Duration
}

// Pages serves the web page. It holds no request state.
type Pages struct {
	cfg  Config
	log  *logrus.Entry
	tmpl map[string]*template.Template // page name -> layout + that page
	// static holds the stylesheet (static/ of the embedded assets).
	static fs.FS
}

// pageNames are the templates under templates/, each rendered inside layout.html.
func pageNames() []string {
	return []string{"nodes", "node", "images", "fleetlock", "rollouts", "rollout", "error"}
}

// New parses the embedded templates; an error is a broken build, reported rather than panicking at request time.
func New(cfg Config, log *logrus.Entry) (*Pages, error) {
	if cfg.Refresh == 0 {
		cfg.Refresh = 10 * time.Second
	}
	if cfg.DefaultSlots <= 0 {
		cfg.DefaultSlots = 1
	}
	p := &Pages{cfg: cfg, log: log, tmpl: map[string]*template.Template{}}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("web page assets: %w", err)
	}
	p.static = static
	for _, name := range pageNames() {
		t, err := template.New("layout.html").Funcs(funcs()).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web page template %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	return p, nil
}

// Register adds the pages to r, the API's router (api.Config.Pages): GET and HEAD only.
func (p *Pages) Register(r *mux.Router) {
	get := []string{http.MethodGet, http.MethodHead}
	r.Handle("/ui", secure(http.RedirectHandler("/ui/", http.StatusMovedPermanently))).Methods(get...)
	r.Handle("/ui/", secure(http.HandlerFunc(p.nodes))).Methods(get...)
	r.Handle("/ui/images", secure(http.HandlerFunc(p.images))).Methods(get...)
	r.Handle("/ui/nodes/{node}", secure(http.HandlerFunc(p.node))).Methods(get...)
	r.Handle("/ui/fleetlock", secure(http.HandlerFunc(p.fleetLock))).Methods(get...)
	r.Handle("/ui/rollouts", secure(http.HandlerFunc(p.rollouts))).Methods(get...)
	r.Handle("/ui/rollouts/{id}", secure(http.HandlerFunc(p.rollout))).Methods(get...)
	r.PathPrefix("/ui/static/").Handler(secure(http.StripPrefix("/ui/static/", http.FileServer(http.FS(p.static))))).
		Methods(get...)
	// Any other path under /ui/ is an HTML 404, not the API's JSON one: a person reads it.
	r.PathPrefix("/ui/").Handler(secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	}))).Methods(get...)
}

// csp allows the page's own stylesheet and nothing else: no script at all, no inline style, no framing, forms
// (the nodes filter, a GET) only to the page itself.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// secure sets the security headers of every answer under /ui/, errors included.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// The pages show live state behind a login: neither the browser nor a proxy may keep them.
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// page is what layout.html reads besides the page's own data.
type page struct {
	Title   string
	Nav     string // the nav entry to mark current
	Refresh int    // seconds; 0: no meta refresh
	Data    any
}

// render writes the page name with data; a template error after the header is logged (the status is sent).
func (p *Pages) render(w http.ResponseWriter, code int, name string, pg page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := p.tmpl[name].Execute(w, pg); err != nil {
		p.log.WithError(err).WithField("page", name).Warn("web page rendering failed")
	}
}

// fail renders the error page with an operator's message.
func (p *Pages) fail(w http.ResponseWriter, _ *http.Request, code int, msg string) {
	p.render(w, code, "error", page{Title: http.StatusText(code), Data: msg})
}

// storeFail answers a store error: a missing record is a 404 with its message, anything else a 500 whose detail
// goes to the log only (it may name tables and hosts).
func (p *Pages) storeFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, err.Error())
		return
	}
	p.log.WithError(err).WithField("path", r.URL.Path).Error("web page: store read failed")
	p.fail(w, r, http.StatusInternalServerError, "The conductor could not read its database; see its log.")
}

// refreshSeconds is the meta refresh of live pages (0 = off).
func (p *Pages) refreshSeconds() int {
	if p.cfg.Refresh < 0 {
		return 0
	}
	return max(1, int(p.cfg.Refresh/time.Second))
}
