package conformance

import (
	"flag"
	"strconv"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// rapidSettings are the property engine's settings for one run.
type rapidSettings struct {
	checks     int
	steps      int           // mean actions of a state machine run
	seed       uint64        // 0: random
	shrinkTime time.Duration // 0: 5 D
}

// rapid reads its settings from process-wide flags, not from its callers.
// A run sets them for the time its property checks run; runs that share
// the settings run their properties at the same time, a run with other
// settings waits until the flags are free (the lock is what makes the
// flags race-free). A flag given on the command line (go test
// -rapid.checks=N) wins over the defaults, never over an option.
var rapidFlags struct {
	mu       sync.Mutex
	free     *sync.Cond
	users    int
	cur      *rapidSettings
	explicit map[string]bool // flags set before the harness touched them
}

func (o *options) rapidSettings() rapidSettings {
	s := o.rapid
	if s.shrinkTime == 0 {
		s.shrinkTime = 5 * o.d()
	}
	return s
}

// property runs prop under rapid with the run's settings.
func (ck *checker) property(prop func(*rapid.T)) {
	s := ck.o.rapidSettings()
	r := &rapidFlags
	r.mu.Lock()
	if r.free == nil {
		// rapid asks testing.Short, which needs the testing flags
		// registered and parsed: a program that is no test (the CLI, a
		// user's main) has neither.
		if flag.Lookup("test.short") == nil {
			testing.Init()
		}
		if !flag.Parsed() {
			_ = flag.CommandLine.Parse(nil)
		}
		r.free = sync.NewCond(&r.mu)
		r.explicit = map[string]bool{}
		flag.Visit(func(f *flag.Flag) { r.explicit[f.Name] = true })
	}
	for r.users > 0 && *r.cur != s {
		r.free.Wait()
	}
	if r.cur == nil || *r.cur != s {
		set := func(name, value string) {
			if !r.explicit[name] || ck.o.rapidSet[name] {
				_ = flag.Set(name, value) // the names exist: rapid defines them at init
			}
		}
		set("rapid.checks", strconv.Itoa(s.checks))
		set("rapid.steps", strconv.Itoa(s.steps))
		set("rapid.seed", strconv.FormatUint(s.seed, 10))
		set("rapid.shrinktime", s.shrinkTime.String())
		// Reproduce with the seed a report names; write nothing into the
		// caller's tree, and replay nothing from it.
		set("rapid.nofailfile", "true")
		r.cur = &s
	}
	r.users++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.users--
		if r.users == 0 {
			r.free.Broadcast()
		}
		r.mu.Unlock()
	}()
	rapid.Check(ck, prop)
}
