// Package testenv is the one place tests ask the machine for what they need: root, a system tool, a file such as
// OVMF's firmware or the Debian kernel package. When a need is missing the test is skipped loudly ("!!! SKIPPING",
// also on stderr so it shows without -v) outside CI, and fails in CI (CI set), where .ci/run installs every need:
// a green CI run must never hide a test that did not run.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (the CI variable is set, as .ci/run sets it).
func InCI() bool { return os.Getenv("CI") != "" }

// Missing ends the test for a missing need described by format: a failure in CI, a loud skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI is set: this test must run; .ci/run installs what it needs)", why)
		return
	}
	fmt.Fprintf(os.Stderr, "!!! SKIPPING %s: %s\n", t.Name(), why)
	t.Skip("!!! SKIPPING: " + why)
}

// Root requires root; why says what the test does with it.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "%s needs root", why)
	}
}

// Tool requires the command name on PATH, installed by Debian package pkg, and returns its path.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (apt-get install %s; .ci/run does)", name, pkg)
	}
	return p
}

// File requires the file at path, installed by Debian package pkg.
func File(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s is missing (apt-get install %s; .ci/run does)", path, pkg)
	}
}
