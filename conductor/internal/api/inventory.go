package api

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// inventoryVersion is the microversion that added GET /v1/nodes/{node}/inventory (Ironic 1.81).
const inventoryVersion = 81

// getInventory serves what inspection learned of a node, as Ironic does: {"inventory": ..., "plugin_data": ...}.
// Older microversions get the plain 404 of an unknown resource; a node never inspected gets Ironic's
// NodeInventoryNotFound 404 (Metal3's baremetal-operator reads that as "inspect again").
func (s *Server) getInventory(w http.ResponseWriter, r *http.Request) {
	if versionOf(r) < inventoryVersion {
		s.writeError(w, r, notFound("The resource could not be found."))
		return
	}
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	inv, err := s.eng.Store().Inventory(r.Context(), n.UUID)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, notFound("Node inventory record for node %s could not be found.", n.UUID))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := newOrdered()
	out.set("inventory", inv.Inventory)
	out.set("plugin_data", inv.PluginData)
	writeJSON(w, http.StatusOK, out)
}
