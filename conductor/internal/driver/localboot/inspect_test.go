package localboot

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestInspectFlag: an agent started for a node in "inspecting" gets --inspect (it posts its inventory to
// /v1/continue_inspection before its lookup); an agent started for any other operation does not.
func TestInspectFlag(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		state string
		want  bool
	}{{"inspecting", true}, {"deploying", false}, {"cleaning", false}} {
		t.Run(tc.state, func(t *testing.T) {
			b := New(Config{AgentBinary: fakeAgent(t), StateDir: shortDir(t), TokenFunc: func() string { return "tok-123" }})
			n := node("0b5c2d7e-2222-4a43-9d2f-8f0c2b1a0001", newLoop(t))
			n.ProvisionState = tc.state
			pid := startAgent(t, b, n)
			if tc.want {
				assert.Contains(t, cmdline(t, pid), "--inspect")
			} else {
				assert.NotContains(t, cmdline(t, pid), "--inspect")
			}
		})
	}
}
