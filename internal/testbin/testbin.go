// Package testbin builds the project's programs that tests start as
// servers or as a server's children, into the test's temporary directory.
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Build builds the main packages pkgs (import paths) into a temporary
// directory of tb and returns it; each program is named for the last
// element of its path. With race, the programs are built with the race
// detector; otherwise without cgo, so that each is a static binary: a
// process that starts by the hundred (a child per connection) then starts
// in about 10 ms, not the 30 a dynamically linked test binary takes.
func Build(tb testing.TB, race bool, pkgs ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := BuildIn(dir, race, pkgs...); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// BuildIn is Build into dir, for a TestMain that builds once for the
// whole package.
func BuildIn(dir string, race bool, pkgs ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Env = os.Environ()
	if !race {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(dir, path.Base(p))); err != nil {
			return fmt.Errorf("building %s: %v", p, err)
		}
	}
	return nil
}

// Tool returns the path of a program the tests need from outside Go (a
// third-party server, a compiler, a browser), or skips the test naming the
// Debian package to install; with ECHOCONFORM_REQUIRE_TOOLS=1 (as in CI) a
// missing tool fails the test instead, so that CI never skips silently.
func Tool(tb testing.TB, tool, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		if strings.HasPrefix(tool, "python") {
			return interpreter(tb, p)
		}
		return p
	}
	if os.Getenv("ECHOCONFORM_REQUIRE_TOOLS") == "1" {
		tb.Fatalf("%s not found; install the Debian package %s", tool, pkg)
	}
	tb.Skipf("%s not found; install the Debian package %s to run this test", tool, pkg)
	return ""
}

// Supervisor makes launched servers run under cmd/echosupervise
// (conformance's $ECHOCONFORM_SUPERVISOR), built for the test process: a
// supervisor starts with every server, and the test binary started again
// costs several times the CPU (0.3 s under -race). For a TestMain, before
// m.Run; the returned func removes the program.
func Supervisor() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "echoconform-supervisor")
	if err != nil {
		return nil, err
	}
	if err := BuildIn(dir, false, "github.com/echoconform/echoconform/cmd/echosupervise"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	os.Setenv("ECHOCONFORM_SUPERVISOR", filepath.Join(dir, "echosupervise"))
	return func() { os.Unsetenv("ECHOCONFORM_SUPERVISOR"); os.RemoveAll(dir) }, nil
}

// interpreters maps a Python found on PATH to the interpreter it runs.
var interpreters sync.Map

// interpreter returns the program that python runs: a version manager's
// shim (pyenv's is a shell script that starts several more programs, 0.4 s
// of CPU per start here against 0.06 s for the interpreter itself) is
// resolved once to sys.executable, so that the servers started for every
// check are the same interpreter without the shim's cost.
func interpreter(tb testing.TB, python string) string {
	tb.Helper()
	if p, ok := interpreters.Load(python); ok {
		return p.(string)
	}
	out, err := exec.Command(python, "-c", "import sys; print(sys.executable)").Output()
	p := string(bytes.TrimSpace(out))
	if err != nil || p == "" {
		tb.Fatalf("%s does not run: %v", python, err)
	}
	interpreters.Store(python, p)
	return p
}
