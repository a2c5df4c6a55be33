package conformance_test

import (
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
	// The harness sets rapid's flags for its properties (options Checks,
	// Seed, ShrinkTime), as for any user of conformance.Test.
	goleak.VerifyTestMain(m)
}
