package forking_test

import (
	"testing"
	"time"

	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/internal/impltest"
)

// The hostile-client tests of issue 8; impltest/hostile.go has them.

// TestHostileConcurrent: connections past MaxChildren wait (in the server,
// or in the listen backlog past MaxWaiting) and none is refused.
func TestHostileConcurrent(t *testing.T) {
	// within is a hang guard: a child per connection.
	n, maxChildren, within := 1000, 64, 5*time.Minute
	if *impltest.Long {
		// 256 with a child, 4,096 waiting in the server (MaxWaiting), the
		// rest in the listen backlog (somaxconn, 4,096 here): a client
		// past all three would wait for SYN retransmits.
		n, maxChildren, within = 6000, 256, 8*time.Minute
	}
	impltest.ManyConcurrent(t, withPool(func(s *forking.Server) { s.MaxChildren = maxChildren }), n, maxChildren, within)
}

// TestHostileIdleClients: idle clients do not take the children that
// active ones need.
func TestHostileIdleClients(t *testing.T) {
	const maxChildren = 4
	m := withPool(func(s *forking.Server) { s.MaxChildren = maxChildren; s.IdleGrace = 100 * time.Millisecond })
	impltest.IdleClients(t, m, 20, maxChildren)
}

func TestHostileResetMidTransfer(t *testing.T) {
	impltest.ResetMidTransfer(t, echochildModel(echochild), 16)
}

// TestHostileStorm: 2,000 by default, 10,000 with -long. Below
// MaxChildren a connection gets its child at once (SPEC.md MODEL-1), so a
// connection not yet reset when it is accepted costs a child start; on a
// loaded machine 10,000 take the server minutes to work off.
func TestHostileStorm(t *testing.T) {
	n := 2000
	if *impltest.Long {
		n = 10000
	}
	impltest.Storm(t, echochildModel(echochild), n, 8, 5*time.Minute)
}

func TestHostileOutOfFDs(t *testing.T) { impltest.OutOfFDs(t, echochildModel(echochild), 100) }
