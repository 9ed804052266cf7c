package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream writes events as `go test -json` does, one JSON object a line.
func stream(t *testing.T, events ...event) string {
	var b strings.Builder
	for _, e := range events {
		j, err := json.Marshal(e)
		require.NoError(t, err)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func out(pkg, test, line string) event {
	return event{Action: "output", Package: pkg, Test: test, Output: line + "\n"}
}

func TestDigest(t *testing.T) {
	const pkg = "example.com/e2e"
	// The shape of stop 25's failure: a subtest fails with its reason, then the parent dumps consoles and fails.
	failing := []event{
		out(pkg, "TestVM", "=== RUN   TestVM"),
		out(pkg, "TestVM/qcow2", "=== RUN   TestVM/qcow2"),
		out(pkg, "TestVM/qcow2", "    wholedisk_test.go:210: node is deploy failed: the reason"),
		out(pkg, "TestVM/qcow2", "    --- FAIL: TestVM/qcow2 (48.77s)"),
		{Action: "fail", Package: pkg, Test: "TestVM/qcow2", Elapsed: 48.77},
		out(pkg, "TestVM/ok", "    --- PASS: TestVM/ok (1.00s)"),
		{Action: "pass", Package: pkg, Test: "TestVM/ok"},
		out(pkg, "TestVM", "    e2e_test.go:248: vm1 serial console: pages of it"),
		out(pkg, "TestVM", "--- FAIL: TestVM (519.92s)"),
		{Action: "fail", Package: pkg, Test: "TestVM", Elapsed: 519.92},
		out(pkg, "", "FAIL\texample.com/e2e\t520.023s"),
		{Action: "fail", Package: pkg, Elapsed: 520.02},
	}
	for _, c := range []struct {
		name        string
		verbose     bool
		in          string
		failed      int
		printed     []string // in the whole output
		notPrinted  []string
		lastLineHas string // the digest's last line
	}{
		{name: "verbose: everything, then the subtest's reason last", verbose: true, in: stream(t, failing...), failed: 3,
			printed:     []string{"=== RUN   TestVM/qcow2", "pages of it", "--- FAIL example.com/e2e TestVM/qcow2 (48.8s)"},
			notPrinted:  []string{"--- FAIL example.com/e2e TestVM (", "--- FAIL example.com/e2e ("},
			lastLineHas: "--- FAIL: TestVM/qcow2 (48.77s)"},
		{name: "quiet: the failed tests' output and the package line, not passing tests", in: stream(t, failing...), failed: 3,
			printed: []string{"node is deploy failed: the reason", "pages of it", "FAIL\texample.com/e2e"}, notPrinted: []string{"--- PASS"},
			lastLineHas: "--- FAIL: TestVM/qcow2 (48.77s)"},
		{name: "all pass: no digest", in: stream(t, out(pkg, "TestA", "--- PASS: TestA (0.00s)"), event{Action: "pass", Package: pkg, Test: "TestA"},
			out(pkg, "", "ok  \texample.com/e2e\t0.1s"), event{Action: "pass", Package: pkg}),
			printed: []string{"ok  \texample.com/e2e"}, notPrinted: []string{"testdigest", "--- PASS"}},
		{name: "a loud skip shows without -v", in: stream(t, out(pkg, "TestB", "!!! SKIPPING TestB: no qemu"), event{Action: "skip", Package: pkg, Test: "TestB"}),
			printed: []string{"!!! SKIPPING TestB: no qemu"}},
		{name: "a build failure", in: stream(t, event{Action: "build-output", Package: pkg, Output: "./x.go:3:1: syntax error\n"},
			event{Action: "build-fail", Package: pkg}) + "FAIL\texample.com/e2e [build failed]\n", failed: 1,
			printed: []string{"syntax error", "--- FAIL example.com/e2e (0.0s)", "[build failed]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			d := &digest{verbose: c.verbose, out: &b, tests: map[string]*test{}}
			require.NoError(t, d.read(strings.NewReader(c.in)))
			assert.Equal(t, c.failed, d.summary(40))
			for _, p := range c.printed {
				assert.Contains(t, b.String(), p)
			}
			for _, p := range c.notPrinted {
				assert.NotContains(t, b.String(), p)
			}
			if c.lastLineHas != "" {
				lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
				assert.Contains(t, lines[len(lines)-1], c.lastLineHas)
			}
		})
	}
}
