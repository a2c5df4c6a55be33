package threading_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/impl/threading"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var model = impltest.Model{
	New: func(cfg echo.Config) impltest.Server { return threading.New(cfg) },
}

func TestStreamExact(t *testing.T)      { impltest.StreamExact(t, model) }
func TestHalfClose(t *testing.T)        { impltest.HalfClose(t, model) }
func TestInteractive(t *testing.T)      { impltest.Interactive(t, model) }
func TestOneshot(t *testing.T)          { impltest.Oneshot(t, model) }
func TestLine(t *testing.T)             { impltest.Line(t, model) }
func TestPIDs(t *testing.T)             { impltest.PIDs(t, model) }
func TestConcurrent64(t *testing.T)     { impltest.Concurrent(t, model, 64) }
func TestShutdownGraceful(t *testing.T) { impltest.ShutdownGraceful(t, model) }
func TestShutdownExpired(t *testing.T)  { impltest.ShutdownExpired(t, model) }
func TestLeaks200(t *testing.T)         { impltest.Leaks(t, model, 200) }

// TestUnix runs the shared tests over a Unix-domain stream socket.
func TestUnix(t *testing.T) { impltest.UnixSuite(t, model) }
