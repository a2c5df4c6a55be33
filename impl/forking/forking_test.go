package forking_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/internal/testbin"
)

// TestMain lets the test binary serve as the child of a forking server:
// Init must come before anything else.
func TestMain(m *testing.M) {
	forking.Init()
	if os.Getenv(envServe) != "" {
		serveForever()
	}
	// Under -race every process sleeps atexit_sleep_ms (1 s) before it
	// exits; children inherit the environment captured by forking.New, and
	// without this each Shutdown would wait a second for its last child.
	// Ignored without -race.
	if err := os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")); err != nil {
		panic(err)
	}
	// The tests that start children by the hundred run cmd/echochild, as
	// echoserver does: a child that re-executes this test binary takes
	// three times as long to start (the protocol, PID and shutdown tests
	// check those).
	dir, err := os.MkdirTemp("", "echochild")
	if err == nil {
		err = testbin.BuildIn(dir, false, "github.com/echoconform/echoconform/cmd/echochild")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	echochild = filepath.Join(dir, "echochild")
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

// echochild is cmd/echochild, built by TestMain.
var echochild string

var model = impltest.Model{
	Fork: true,
	New:  func(cfg echo.Config) impltest.Server { return forking.New(cfg) },
}

func TestStreamExact(t *testing.T)      { impltest.StreamExact(t, model) }
func TestHalfClose(t *testing.T)        { impltest.HalfClose(t, model) }
func TestInteractive(t *testing.T)      { impltest.Interactive(t, model) }
func TestOneshot(t *testing.T)          { impltest.Oneshot(t, model) }
func TestLine(t *testing.T)             { impltest.Line(t, model) }
func TestPIDs(t *testing.T)             { impltest.PIDs(t, model) }
func TestConcurrent64(t *testing.T)     { impltest.Concurrent(t, echochildModel(echochild), 64) }
func TestShutdownGraceful(t *testing.T) { impltest.ShutdownGraceful(t, model) }
func TestShutdownExpired(t *testing.T)  { impltest.ShutdownExpired(t, model) }
func TestLeaks200(t *testing.T)         { impltest.Leaks(t, echochildModel(echochild), 200) }

// TestUnix runs the shared tests over a Unix-domain stream socket, with
// echochild as the children (as echoserver runs them).
func TestUnix(t *testing.T) { impltest.UnixSuite(t, echochildModel(echochild)) }
