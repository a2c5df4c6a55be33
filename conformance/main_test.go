package conformance_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/internal/mutant"
)

func TestMain(m *testing.M) {
	forking.Init()
	conformance.Init()
	mutant.Init()
	// Under -race every process sleeps 1 s at exit by default; the forking
	// reference's children would make each check wait for it.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	flag.Parse()
	// Network properties cost milliseconds a case: keep rapid's defaults
	// small unless the command line asks for more.
	setDefault("rapid.checks", "20")
	setDefault("rapid.steps", "20")
	setDefault("rapid.shrinktime", "20s")
	setDefault("rapid.nofailfile", "true")
	goleak.VerifyTestMain(m)
}

func setDefault(name, value string) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if !set {
		if err := flag.Set(name, value); err != nil {
			panic(err)
		}
	}
}
