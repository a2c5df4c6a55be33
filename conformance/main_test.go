package conformance_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/internal/mutant"
	"github.com/echoconform/echoconform/internal/testbin"
)

func TestMain(m *testing.M) {
	forking.Init()
	conformance.Init()
	mutant.Init()
	// Under -race every process sleeps 1 s at exit by default; the forking
	// reference's children would make each check wait for it.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	// fullRuns, not -parallel, bounds the work: the parallel tests of this
	// package (zoo rows, references as commands, third-party servers) wait
	// for it, and a test waiting there must not keep the others from
	// their turn. So -parallel, unless given, admits every one of them.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "1000")
	}
	// As the CLI (cli.Run) does: the harness's data would otherwise make
	// the collector run for a tenth of the zoo's CPU.
	debug.SetGCPercent(400)
	// The harness sets rapid's flags for its properties (options Checks,
	// Seed, ShrinkTime), as for any user of conformance.Test.
	cleanup, err := testbin.Supervisor()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fullRuns bounds the full runs of the harness against a server that this
// test process makes at once: three per core. A run spends most of its
// time waiting for its server (SHUT's bounds, LEAK's rounds, a oneshot
// server's quiet period): at two per core the package used 1.44 cores of
// 2. Verdicts do not depend on the load (make zoo-soak adds a busy loop on
// every core to show it); each comes from its first run, nothing is
// re-checked.
var fullRuns = make(chan struct{}, 3*runtime.NumCPU())

// runFull runs f when fullRuns lets it.
func runFull(f func()) {
	fullRuns <- struct{}{}
	defer func() { <-fullRuns }()
	f()
}
