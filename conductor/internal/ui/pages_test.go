package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// allPaths are the pages and the stylesheet; each must sit behind the API's authentication.
func allPaths(f *fixture) []string {
	return []string{"/ui/", "/ui/images", "/ui/fleetlock", "/ui/nodes/" + f.image.UUID, "/ui/static/ui.css", "/ui/nope"}
}

// TestPagesAuth: with auth on, every page and asset answers 401 with a Basic challenge to a browser without
// credentials or with wrong ones, and shows no node; the right credentials get the page.
func TestPagesAuth(t *testing.T) {
	f := newFixture(t)
	for _, p := range allPaths(f) {
		for _, c := range []struct{ user, pass string }{{"", ""}, {"op", "wrong"}} {
			res, body := f.get(t, p, c.user, c.pass)
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s as %q", p, c.user)
			assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Basic", p)
			assert.NotContains(t, body, "spare-0", p)
			assert.NotContains(t, body, f.image.UUID, p)
		}
	}
	body := f.page(t, "/ui/", http.StatusOK)
	assert.Contains(t, body, "spare-0")
}

// TestPagesHeaders: every answer under /ui/ (pages, stylesheet, 404, 400) carries the strict CSP, nosniff,
// no framing and no caching; the pages are HTML, the stylesheet CSS; nothing can be changed (405 to a POST).
func TestPagesHeaders(t *testing.T) {
	f := newFixture(t)
	for _, p := range append(allPaths(f), "/ui/?limit=x") {
		res, body := f.get(t, p, "op", "pw")
		require.Contains(t, []int{http.StatusOK, http.StatusNotFound, http.StatusBadRequest}, res.StatusCode, p)
		csp := res.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'none'", p)
		assert.Contains(t, csp, "frame-ancestors 'none'", p)
		assert.NotContains(t, csp, "unsafe-inline", p)
		assert.NotContains(t, csp, "script-src", p, "no script is allowed at all (default-src 'none')")
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), p)
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), p)
		if strings.HasSuffix(p, ".css") {
			assert.Contains(t, res.Header.Get("Content-Type"), "text/css")
			continue
		}
		assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"), p)
		assert.NotContains(t, body, "<script", p, "the pages carry no script")
		assert.NotContains(t, body, " style=", p, "no inline style (the CSP refuses it)")
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req := httptest.NewRequest(m, "/ui/nodes/"+f.image.UUID, nil)
		req.SetBasicAuth("op", "pw")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
	}
	assert.NotContains(t, f.page(t, "/ui/", http.StatusOK), "method=\"post\"")
}

// rows counts the node rows of a nodes page.
func rows(body string) int { return strings.Count(body, `<tr class="node"`) }

// TestNodesPage: the list shows names (escaped), UUIDs, states, power, live deploy progress and the booted
// digest (the reporters of the page's nodes read at once, not node by node); it filters by provision state and
// pages with limit and marker; bad paging is a 400 page.
func TestNodesPage(t *testing.T) {
	f := newFixture(t)
	f.reads.reset()
	body := f.page(t, "/ui/", http.StatusOK)
	assert.Equal(t, 5, rows(body))
	assert.Equal(t, int64(1), f.reads.reporters.Load(), "one reporter read for the page's 5 nodes")
	assert.Zero(t, f.reads.reporter.Load(), "no reporter read per node")
	assert.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "the hostile name is text")
	assert.NotContains(t, body, hostile)
	assert.Contains(t, body, f.deploying.UUID)
	assert.Contains(t, body, "wait call-back")
	assert.Contains(t, body, `<span class="phase">pull</span>`)
	assert.Contains(t, body, "42 %")
	assert.Contains(t, body, "512.0 MiB of 1.0 GiB")
	assert.Contains(t, body, f.first[:len("sha256:")+12], "the booted digest, shortened")
	assert.Contains(t, body, `http-equiv="refresh"`, "the list reloads itself without script")

	avail := f.page(t, "/ui/?provision_state=available", http.StatusOK)
	assert.Equal(t, 3, rows(avail))
	assert.NotContains(t, avail, "deploying-node")
	assert.Equal(t, 0, rows(f.page(t, "/ui/?provision_state=deploy+failed", http.StatusOK)))

	// Paging: two, then the one left, through the page's own next link.
	first := f.page(t, "/ui/?provision_state=available&limit=2", http.StatusOK)
	require.Equal(t, 2, rows(first))
	m := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(first)
	require.Len(t, m, 2, "a full page links the next")
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	u, err := url.Parse(next)
	require.NoError(t, err)
	assert.Equal(t, "available", u.Query().Get("provision_state"), "the filter is kept")
	second := f.page(t, next, http.StatusOK)
	assert.Equal(t, 1, rows(second))
	assert.Contains(t, second, f.availables[2].UUID)
	assert.NotContains(t, second, `id="next"`)

	for _, q := range []string{"limit=0", "limit=x", "marker=not-a-node"} {
		assert.Contains(t, f.page(t, "/ui/?"+q, http.StatusBadRequest), `id="message"`, q)
	}
}

// TestNodePage: one node's fields, instance_info masked as the API masks it, its bootc report and its actions;
// an unknown node is a 404 page.
func TestNodePage(t *testing.T) {
	f := newFixture(t)
	body := f.page(t, "/ui/nodes/"+f.image.UUID, http.StatusOK)
	assert.Contains(t, body, "&lt;script&gt;")
	assert.NotContains(t, body, hostile)
	assert.Contains(t, body, "oci://"+f.ref, "instance_info is shown")
	assert.Contains(t, body, "******", "the pull secret is masked")
	assert.NotContains(t, body, `u:p`, "the pull secret never shows")
	for _, p := range allPaths(f) {
		_, other := f.get(t, p, "op", "pw")
		assert.NotContains(t, other, "hunter2", "%s: driver_info is never shown", p)
	}
	assert.NotContains(t, body, "bmc-admin", "driver_info is not shown at all")
	assert.Contains(t, body, f.first, "booted digest")
	assert.Contains(t, body, "sha256:0123", "rollback digest")
	assert.Contains(t, body, "ferric-hostd 1.0")
	assert.Regexp(t, `<td>upgrade</td>[\s\S]*yes \(group workers\)[\s\S]*<td class="state">queued</td>`, body)

	dep := f.page(t, "/ui/nodes/deploying-node", http.StatusOK)
	assert.Contains(t, dep, f.deploying.UUID, "a node is found by name too")
	assert.Contains(t, dep, "42 %")
	assert.Contains(t, dep, "No image-mode reporter")

	assert.Contains(t, f.page(t, "/ui/nodes/no-such-node", http.StatusNotFound), `id="message"`)
}

// TestImagesPage: the booted image with its reference, node count, hosts and the stale flag of the API's
// resolver against a real registry: current, then stale once the followed tag moves.
func TestImagesPage(t *testing.T) {
	f := newFixture(t)
	body := f.page(t, "/ui/images", http.StatusOK)
	assert.Contains(t, body, `title="`+f.first+`"`)
	assert.Contains(t, body, "<div>"+f.ref+"</div>")
	assert.Contains(t, body, `<td class="count">1</td>`)
	assert.Contains(t, body, `<span class="flag ok">current</span>`)
	assert.Contains(t, body, `href="/ui/nodes/`+f.image.UUID+`"`)
	assert.Contains(t, body, "&lt;script&gt;", "the host's name is text")
	assert.NotContains(t, body, hostile)

	pushImage(t, f.reg.Host, "os", "v1")
	assert.Contains(t, f.page(t, "/ui/images", http.StatusOK), `<span class="flag warn">stale</span>`)
}

// TestFleetLockPage: the reboot group with its default slot count and its holders: a node's reporter by the
// node's name (escaped, the UUID in the link's title), a Zincati client by its own id; the names are read once.
func TestFleetLockPage(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.AcquireFleetLock(context.Background(), "workers", "zincati-7f3a", 2))
	f.reads.reset()
	body := f.page(t, "/ui/fleetlock", http.StatusOK)
	assert.Equal(t, int64(1), f.reads.names.Load(), "one read of the holders' names")
	assert.Contains(t, body, `<td class="name">workers</td>`)
	assert.Contains(t, body, "2 of 2")
	assert.Contains(t, body, "(the conductor's default)")
	assert.Contains(t, body, `<a href="/ui/nodes/`+f.image.UUID+`" title="`+f.image.UUID+`">&lt;script&gt;`)
	assert.Contains(t, body, `<span class="mono">zincati-7f3a</span>`)
	assert.NotContains(t, body, hostile)
}

// TestRolloutsPages: the rollouts list and one rollout wave by wave, with its nodes by name (escaped, linking
// to their pages, the UUID in the link's title; the UUID for a node without a name) read at once for the whole
// rollout, their states and the pause reason as text.
func TestRolloutsPages(t *testing.T) {
	f := newFixture(t)
	body := f.page(t, "/ui/rollouts", http.StatusOK)
	assert.Contains(t, body, `id="empty"`)

	ctx := context.Background()
	unnamed := newNode(t, f.st, "", "active", nil, nil)
	ro := &store.BootcRollout{ID: "ro-1", Image: f.reg.Host + "/os@" + f.first, Spec: []byte(`{}`), State: "paused",
		CurrentWave: 1, Waves: 2, PauseReason: "wave 1: node <b>x</b> failed"}
	require.NoError(t, f.st.CreateBootcRollout(ctx, ro, []store.BootcRolloutNode{
		{NodeUUID: f.availables[0].UUID, Wave: 0, Position: 0, State: "done"},
		{NodeUUID: unnamed.UUID, Wave: 0, Position: 1, State: "done"},
		{NodeUUID: f.image.UUID, Wave: 1, Position: 0, State: "failed", StepImage: ro.Image, Reason: "bootc said no"},
		{NodeUUID: f.availables[1].UUID, Wave: 1, Position: 1, State: "pending"},
	}))
	body = f.page(t, "/ui/rollouts", http.StatusOK)
	assert.Contains(t, body, `href="/ui/rollouts/ro-1"`)
	assert.Contains(t, body, "1 of 2")
	assert.Contains(t, body, "node &lt;b&gt;x&lt;/b&gt; failed", "the reason is text")

	f.reads.reset()
	body = f.page(t, "/ui/rollouts/ro-1", http.StatusOK)
	assert.Equal(t, int64(1), f.reads.names.Load(), "one name read for the rollout's 4 nodes")
	assert.Equal(t, 2, strings.Count(body, `<h2 class="wave">`))
	assert.Contains(t, body, `Wave 1 <span class="flag">current</span>`)
	assert.Equal(t, 4, strings.Count(body, `<tr class="rollout-node">`))
	assert.Contains(t, body, "bootc said no")
	for _, c := range []struct{ node, text string }{
		{f.availables[0].UUID, "spare-0"},
		{f.availables[1].UUID, "spare-1"},
		{f.image.UUID, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"},
		{unnamed.UUID, `<span class="mono">` + unnamed.UUID + `</span>`},
	} {
		assert.Contains(t, body, `<a href="/ui/nodes/`+c.node+`" title="`+c.node+`">`+c.text+`</a>`, c.text)
	}
	assert.NotContains(t, body, hostile, "the hostile name is text")
	f.page(t, "/ui/rollouts/nope", http.StatusNotFound)
}
