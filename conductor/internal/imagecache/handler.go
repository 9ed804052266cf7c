package imagecache

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
)

// PathPrefix is where Handler is mounted on the conductor's API listener.
const PathPrefix = "/images/"

// Grant is what one node's deploy may download: the entry Key under the file Name, with the per-deploy Token
// (hex of 32+ random bytes) that the URL must carry.
type Grant struct {
	Token string
	Key   string
	Name  string
}

// minTokenLen is the shortest token accepted: 32 random bytes in hex.
const minTokenLen = 64

// Handler serves GET and HEAD /images/<node-uuid>/<token>/<name> to agents, with Range requests. The endpoint is
// public (an agent holds no API credentials), so the token is the capability: grant returns the node's current
// grant only while the node is deploying, the token is compared in constant time, and every refusal (unknown
// node, wrong token or name, node not deploying, entry gone, another method, any other path) is the same plain
// 404: the router's own not-found and method answers are that 404 too, and it does not clean paths (a cleaning
// redirect would answer differently). Nothing is listed. Requests are logged at debug level, without the token.
func (c *Cache) Handler(grant func(ctx context.Context, node string) (Grant, bool), log *logrus.Entry) http.Handler {
	r := mux.NewRouter().SkipClean(true)
	notFound := http.HandlerFunc(http.NotFound)
	r.NotFoundHandler, r.MethodNotAllowedHandler = notFound, notFound
	r.HandleFunc(PathPrefix+"{node}/{token}/{name}", func(w http.ResponseWriter, r *http.Request) {
		node, g, ok := c.authorize(r, grant)
		if !ok {
			http.NotFound(w, r)
			return
		}
		f, err := c.Open(g.Key)
		if err != nil {
			log.WithFields(logrus.Fields{"node": node, "image": g.Key}).Warn("a deploying node asked for a cached image that is gone")
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.NotFound(w, r)
			return
		}
		// Debug: an agent's download is one request per range it reads (qemu-img reads thousands).
		log.WithFields(logrus.Fields{"node": node, "image": g.Key, "method": r.Method, "range": r.Header.Get("Range")}).
			Debug("agent downloads a cached image")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeContent(w, r, g.Name, st.ModTime(), f)
	}).Methods(http.MethodGet, http.MethodHead)
	return r
}

// authorize checks the request's path variables against the node's grant: the node, the token and the name. It
// returns the node and its grant when all match.
func (c *Cache) authorize(r *http.Request, grant func(ctx context.Context, node string) (Grant, bool)) (string, Grant, bool) {
	vars := mux.Vars(r)
	node, token, name := vars["node"], vars["token"], vars["name"]
	if len(token) < minTokenLen {
		return "", Grant{}, false
	}
	if _, err := uuid.Parse(node); err != nil {
		return "", Grant{}, false
	}
	g, ok := grant(r.Context(), node)
	if !ok || len(g.Token) < minTokenLen {
		return "", Grant{}, false
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(g.Token)) != 1 || name != g.Name {
		return "", Grant{}, false
	}
	return node, g, true
}
