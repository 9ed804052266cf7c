package testenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// recorder is a testing.TB that records how a test ended instead of ending it.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Name() string                      { return "TestX" }
func (r *recorder) Skip(args ...any)                  { r.skipped = true; r.msg = args[0].(string) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = true; r.msg = format }

// TestMissing: a missing need skips loudly outside CI and fails in CI.
func TestMissing(t *testing.T) {
	for _, ci := range []string{"", "1"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Tool(r, "no-such-tool-ferric", "nothing")
		assert.Equal(t, ci == "", r.skipped, "CI=%q", ci)
		assert.Equal(t, ci != "", r.failed, "CI=%q", ci)
		if r.skipped {
			assert.Contains(t, r.msg, "!!! SKIPPING: no-such-tool-ferric is not installed (apt-get install nothing")
		}
	}
	r := &recorder{TB: t}
	assert.NotEmpty(t, Tool(r, "sh", "dash"))
	assert.False(t, r.skipped || r.failed, "a present tool is no reason to stop")
}
