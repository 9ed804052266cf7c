package imagecache

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/google/uuid"
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
// node, wrong token or name, node not deploying, entry gone, another method, any other path) is the same 404.
// Nothing is listed. Requests are logged without the token.
func (c *Cache) Handler(grant func(ctx context.Context, node string) (Grant, bool), log *logrus.Entry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		log.WithFields(logrus.Fields{"node": node, "image": g.Key, "method": r.Method, "range": r.Header.Get("Range")}).
			Info("agent downloads a cached image")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeContent(w, r, g.Name, st.ModTime(), f)
	})
}

// authorize checks the request against the node's grant: the method, the path's shape, the node, the token and
// the name. It returns the node and its grant when all match.
func (c *Cache) authorize(r *http.Request, grant func(ctx context.Context, node string) (Grant, bool)) (string, Grant, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", Grant{}, false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || len(parts[1]) < minTokenLen || parts[2] == "" {
		return "", Grant{}, false
	}
	node, token, name := parts[0], parts[1], parts[2]
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
