package eventloop_test

import (
	"testing"

	"github.com/echoconform/echoconform/impl/internal/impltest"
)

// The hostile-client tests of issue 8; impltest/hostile.go has them.

func TestHostileConcurrent(t *testing.T) {
	n := 1000
	if *impltest.Long {
		// Two descriptors a connection in this process (the client's and
		// the server's): under the hard limit of 20,000 on the machine
		// this is sized for.
		n = 9000
	}
	impltest.ManyConcurrent(t, model, n, 0, impltest.Timeout) // a hang guard
}

func TestHostileIdleClients(t *testing.T) { impltest.IdleClients(t, model, 20, 0) }

func TestHostileResetMidTransfer(t *testing.T) { impltest.ResetMidTransfer(t, model, 16) }

func TestHostileStorm(t *testing.T) {
	n := 10000
	if *impltest.Long {
		n = 50000
	}
	impltest.Storm(t, model, n, 8, impltest.Timeout)
}

// The listener impltest.OutOfFDs wraps is not a *net.TCPListener: it runs
// the server's other accept path, a goroutine handing connections to the
// loop. TestOutOfFDsInLoop is the loop's own accept4.
func TestHostileOutOfFDs(t *testing.T) { impltest.OutOfFDs(t, model, 100) }
