// Command testdigest reads `go test -json` on stdin, prints the tests' output as go test would, and ends with a
// digest of the failures: for each failed test that has no failed subtest of its own, the last lines it printed.
//
// Why: CI shows only the tail of a failed run. A VM test that fails dumps its consoles after the failing subtest
// has printed its reason, so the reason scrolled out of view (stop 25: "qcow2 whole-disk image through direct"
// failed and the excerpt held only the consoles). The digest puts the reason last, where it is seen.
//
// With -v every line is printed as it comes (go test -v); without it only the package lines ("ok", "FAIL"),
// loud skips, and the whole output of each failed test, as go test prints without -v. The exit status is 1 when a
// test or a package failed; the Makefile's pipefail also carries go test's own status.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent), the fields used here.
type event struct {
	Action     string
	Package    string
	ImportPath string // build events name the package here
	Test       string
	Output     string
	Elapsed    float64
}

// keep bounds the lines remembered per test: CI runs emit megabytes of conductor logs, and a failure's reason is
// in its last lines.
const keep = 400

// test is what is remembered of one test (or of a package's own lines, with name "").
type test struct {
	pkg, name string
	lines     []string // the last keep lines
	failed    bool
	elapsed   float64
}

type digest struct {
	verbose bool
	out     io.Writer
	tests   map[string]*test // by package + "\x00" + name
	failed  []*test          // in the order they failed
}

func main() {
	verbose := flag.Bool("v", false, "print every test's output as it comes (go test -v)")
	tail := flag.Int("tail", 40, "lines of each failed test's output in the closing digest")
	flag.Parse()
	d := &digest{verbose: *verbose, out: os.Stdout, tests: map[string]*test{}}
	if err := d.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testdigest: %v\n", err)
		os.Exit(2)
	}
	if d.summary(*tail) > 0 {
		os.Exit(1)
	}
}

// read consumes the event stream. A line that is not JSON (go vet's or the build's own words on some Go
// versions) is printed as it is.
func (d *digest) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20) // one event carries one output line; conductor lines can be long
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(d.out, sc.Text())
			continue
		}
		d.add(e)
	}
	return sc.Err()
}

// add records one event and prints what the mode prints of it.
func (d *digest) add(e event) {
	if e.Package == "" {
		e.Package = e.ImportPath
	}
	key := e.Package + "\x00" + e.Test
	t := d.tests[key]
	if t == nil {
		t = &test{pkg: e.Package, name: e.Test}
		d.tests[key] = t
	}
	switch e.Action {
	case "output", "build-output":
		t.lines = append(t.lines, e.Output)
		if len(t.lines) > keep {
			t.lines = t.lines[len(t.lines)-keep:]
		}
		pkgLine := e.Test == "" && e.Output != "PASS\n" // go test without -v prints "ok", not "PASS"
		if d.verbose || pkgLine || strings.Contains(e.Output, "!!! SKIPPING") {
			fmt.Fprint(d.out, e.Output)
		}
	case "fail", "build-fail":
		t.failed, t.elapsed = true, e.Elapsed
		d.failed = append(d.failed, t)
		if !d.verbose && e.Test != "" {
			fmt.Fprint(d.out, strings.Join(t.lines, "")) // go test without -v prints a failed test's output
		}
	}
}

// summary prints the closing digest and returns how many tests and packages failed.
func (d *digest) summary(tail int) int {
	if len(d.failed) == 0 {
		return 0
	}
	fmt.Fprintf(d.out, "\n=== testdigest: %d failed (tests and packages); the last lines of each failed test without failed subtests:\n", len(d.failed))
	for _, t := range d.failed {
		if t.name != "" && d.hasFailedChild(t) {
			continue // its failure is its subtest's, shown below or above
		}
		if t.name == "" && d.hasFailedTest(t.pkg) {
			continue // the package failed because its tests did
		}
		name := t.pkg
		if t.name != "" {
			name += " " + t.name
		}
		fmt.Fprintf(d.out, "--- FAIL %s (%.1fs)\n", name, t.elapsed)
		lines := t.lines
		if len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		for _, l := range lines {
			fmt.Fprint(d.out, "    "+l)
		}
	}
	return len(d.failed)
}

// hasFailedChild reports whether a subtest of t failed.
func (d *digest) hasFailedChild(t *test) bool {
	for _, o := range d.failed {
		if o.pkg == t.pkg && strings.HasPrefix(o.name, t.name+"/") {
			return true
		}
	}
	return false
}

// hasFailedTest reports whether a test of package pkg failed (the package's own failure is then theirs).
func (d *digest) hasFailedTest(pkg string) bool {
	for _, o := range d.failed {
		if o.pkg == pkg && o.name != "" {
			return true
		}
	}
	return false
}
