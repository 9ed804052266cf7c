package fleet

import (
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ReadReport checks a reporter's report and returns what the store keeps of it: the status verbatim and the
// images it names in columns. An invalid report is an error naming the field (bootchost.ErrInvalid).
func ReadReport(rep bootchost.Report, at time.Time) (store.BootcReport, error) {
	if len(rep.Status) == 0 || string(rep.Status) == "null" {
		return store.BootcReport{}, fmt.Errorf("%w: field \"status\" is missing; send `bootc status --format=json` in it",
			bootchost.ErrInvalid)
	}
	h, err := bootchost.Parse(rep.Status)
	if err != nil {
		return store.BootcReport{}, fmt.Errorf("field \"status\": %w", err)
	}
	out := store.BootcReport{Status: rep.Status, ReportedAt: at, BootID: rep.BootID, HostdVersion: rep.HostdVersion}
	// Only a registry reference can be resolved to see whether it moved (oci: and containers-storage: cannot).
	if im := h.Spec.Image; im != nil && (im.Transport == "registry" || im.Transport == "") {
		out.SpecRef = im.Image
	}
	out.BootedRef, out.BootedDigest = h.BootedImage()
	out.StagedRef, out.StagedDigest = h.StagedImage()
	out.RollbackRef, out.RollbackDigest = h.RollbackImage()
	// Incompatible is the booted deployment's: local layering bootc cannot carry into an update.
	out.Incompatible = h.Status.Booted != nil && h.Status.Booted.Incompatible
	return out, nil
}
