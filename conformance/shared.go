package conformance

import (
	"fmt"
	"strings"
	"sync"
)

// shared is one observation of a server that several checks of a run
// judge, each its own part (LEAK's rounds, SHUT-3…7's shutdown): the first
// check that asks makes it, on its own server, and the others reuse it.
type shared[T any] struct {
	mu     sync.Mutex
	made   bool
	val    T
	by     string // the check that made it
	failed bool   // making it ended that check
	why    string
}

// get returns the observation and the check that made it, making it with
// observe on first use. When observing ended the check that made it (the
// server died, a step failed), every check that asks gets an error saying
// where and why, the server's death first.
func (s *shared[T]) get(ck *checker, observe func() T) (T, string, error) {
	s.mu.Lock()
	// Deferred: observing may end the check (runtime.Goexit), which must
	// not leave the other checks waiting for the lock.
	defer s.mu.Unlock()
	if !s.made {
		s.made, s.by = true, ck.req.ID
		complete := false
		defer func() {
			if !complete {
				s.failed, s.why = true, strings.TrimSpace(ck.diedOf()+"\n"+ck.rec.lastError())
			}
		}()
		s.val = observe()
		complete = true
	}
	if s.failed {
		return s.val, s.by, fmt.Errorf("ended in %s: %s", s.by, s.why)
	}
	return s.val, s.by, nil
}
