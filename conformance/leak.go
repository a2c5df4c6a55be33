package conformance

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/internal/proc"
)

func init() {
	register("LEAK-1", check{applies: needsProcess, run: func(ck *checker) { ck.leakRounds().judgeZombies(ck) }})
	register("LEAK-2", check{applies: needsProcess, run: func(ck *checker) { ck.leakRounds().judgeFDs(ck) }})
	register("LEAK-3", check{applies: needsProcess, run: func(ck *checker) { ck.leakRounds().judgeChildren(ck) }})
	register("LEAK-4", check{applies: needsProcess, run: func(ck *checker) { ck.leakRounds().judgeThreads(ck) }})
}

// Rounds of the leak checks: a warm-up round, then leakRounds rounds of
// leakConns connections each, the server read at rest after each.
const (
	leakRounds = 4
	leakConns  = 16
)

// reading is the server's resources at one moment.
type reading struct {
	FDs, Threads, Children, Zombies, Goroutines int
}

func (r reading) String() string {
	return fmt.Sprintf("%d descriptors, %d threads, %d live children, %d zombies", r.FDs, r.Threads, r.Children, r.Zombies)
}

// read reads the server; an in-process server is this whole process, read
// after two garbage collections (Go frees pooled splice pipes only then).
func (ck *checker) read() reading {
	in := ck.server()
	pid := in.pid
	var r reading
	if in.srv != nil {
		runtime.GC()
		runtime.GC()
		r.Goroutines = runtime.NumGoroutine()
		pid = os.Getpid()
	}
	info, err := proc.Read(pid)
	if err != nil {
		ck.Fatalf("reading the server process %d: %v", pid, err)
	}
	r.FDs, r.Threads = info.FDs, info.Threads
	r.Children = len(ck.liveChildren(pid))
	z, _ := proc.Zombies(pid)
	r.Zombies = len(z)
	return r
}

// roundsObs is the server read at rest, before and after rounds of
// connections; for an in-process server, also what goleak found after
// Shutdown.
type roundsObs struct {
	base      reading
	after     []reading // one per round
	failed    error     // the rounds could not be served
	goroutine error     // in-process: goroutines left after Shutdown
}

// leakRounds are the rounds the LEAK checks of a run share: they cost the
// same for each, and each judges its own part.
func (ck *checker) leakRounds() *roundsObs {
	obs, _, err := ck.o.leak.get(ck, ck.rounds)
	ck.recordRounds(obs)
	if err == nil {
		err = obs.failed
	} else {
		err = fmt.Errorf("they %v", err)
	}
	if err != nil {
		ck.Fatalf("the rounds of connections the leak checks read the server around could not be served: %v", err)
	}
	return obs
}

// rounds serves rounds of concurrent connections and reads the server at
// rest after each: once children and zombies are back to baseline, or D
// has passed.
func (ck *checker) rounds() *roundsObs {
	obs := &roundsObs{}
	var ignore goleak.Option
	if ck.target.caps().serveResult {
		ignore = goleak.IgnoreCurrent()
	}
	round := func() {
		// Four at a time: a listen backlog of 5 (Python's default) must not
		// turn the rounds into SYN retransmits.
		var wg sync.WaitGroup
		var mu sync.Mutex
		sem := make(chan struct{}, 4)
		for i := 0; i < leakConns; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := ck.serveOne(i); err != nil {
					mu.Lock()
					if obs.failed == nil {
						obs.failed = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		ck.closeConns()
	}
	// At rest: children, zombies and goroutines back to baseline, and the
	// descriptors back to baseline or steady (a pool keeps some).
	atRest := func() reading {
		var r, prev reading
		ck.poll(ck.dl.D, func() bool {
			prev, r = r, ck.read()
			return r.Children <= obs.base.Children && r.Zombies == 0 && r.Goroutines <= obs.base.Goroutines &&
				(r.FDs <= obs.base.FDs || r.FDs == prev.FDs)
		})
		return r
	}
	round() // warm-up: runtimes allocate lazily on their first connections
	obs.base = ck.read()
	ck.poll(ck.dl.D, func() bool { obs.base = ck.read(); return obs.base.Zombies == 0 })
	for i := 0; i < leakRounds && obs.failed == nil; i++ {
		round()
		obs.after = append(obs.after, atRest())
	}
	if obs.failed != nil {
		if why := ck.diedOf(); why != "" {
			obs.failed = fmt.Errorf("%s: %w", why, obs.failed)
		}
	}
	if in := ck.server(); in.srv != nil && obs.failed == nil {
		in.stopping.Store(true) // goleak looks after Shutdown
		ctx, cancel := context.WithTimeout(context.Background(), ck.dl.stop)
		defer cancel()
		if err := in.srv.Shutdown(ctx); err != nil {
			obs.goroutine = fmt.Errorf("Shutdown: %v", err)
		} else {
			select {
			case <-in.served:
				obs.goroutine = goleak.Find(ignore)
			case <-ctx.Done():
				obs.goroutine = fmt.Errorf("Serve did not return after Shutdown")
			}
		}
	}
	return obs
}

// serveOne has the server handle one connection: send, wait a while for
// any reply, half-close, read to EOF. What the reply says is other checks'
// business; the leak rounds need only that the server handled it.
func (ck *checker) serveOne(i int) error {
	c, err := ck.dial()
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write(ck.message(i)); err != nil {
		return err
	}
	first, err := c.readUntil(nil, 1<<20, ck.dl.D/4, func(b []byte) bool { return len(b) > 0 })
	if err == io.EOF || len(first) > 0 {
		return nil // handled; how it ends is other checks' business
	}
	_ = c.halfClose()
	got, err := c.readToEOF(1 << 20)
	if err != nil && len(got) == 0 && !isReset(err) {
		return err
	}
	return nil
}

func (o *roundsObs) summary() string {
	s := fmt.Sprintf("at rest before: %v", o.base)
	for i, r := range o.after {
		s += fmt.Sprintf("\n  after round %d (%d connections in all): %v", i+1, (i+1)*leakConns, r)
	}
	return s
}

// growth is how much a count grew from the first round to the last, and
// whether it grew in every round. A leak per connection grows with every
// round; a pool or plateau does not (Go's pool of splice pipes, for one,
// can step up once as the scheduler spreads connections over its Ps).
func (o *roundsObs) growth(f func(reading) int) (total int, everyRound bool) {
	everyRound = true
	for i := 1; i < len(o.after); i++ {
		if f(o.after[i]) <= f(o.after[i-1]) {
			everyRound = false
		}
	}
	return f(o.after[len(o.after)-1]) - f(o.after[0]), everyRound
}

// leaking reports whether a count grows with the connections served.
func (o *roundsObs) leaking(f func(reading) int) (int, bool) {
	g, every := o.growth(f)
	return g, g > leakConns/4 && every
}

func (o *roundsObs) judgeZombies(ck *checker) {
	for i, r := range o.after {
		if r.Zombies > 0 {
			ck.Fatalf("%d zombie children of the server remained %v after round %d closed: children are not reaped\n  %s", r.Zombies, ck.dl.D, i+1, o.summary())
		}
	}
}

func (o *roundsObs) judgeFDs(ck *checker) {
	slack := 2*leakConns + 4 // pools such as Go's splice pipes, bounded by concurrency
	last := o.after[len(o.after)-1]
	if g, leak := o.leaking(func(r reading) int { return r.FDs }); leak {
		ck.Fatalf("open descriptors grew with every round, by %d over %d connections: about %.1f per connection\n  %s",
			g, (leakRounds-1)*leakConns, float64(g)/float64((leakRounds-1)*leakConns), o.summary())
	}
	if last.FDs > o.base.FDs+slack {
		ck.Fatalf("open descriptors did not return to baseline: %d at rest before, %d after\n  %s", o.base.FDs, last.FDs, o.summary())
	}
}

func (o *roundsObs) judgeChildren(ck *checker) {
	for i, r := range o.after {
		if r.Children > o.base.Children {
			ck.Fatalf("%d live children after round %d closed, %d at rest before: children outlive their connections\n  %s", r.Children, i+1, o.base.Children, o.summary())
		}
	}
}

// judgeThreads: threads (and, in-process, goroutines) do not grow with the
// connections served, and no goroutine of an in-process server outlives
// Shutdown (LEAK-4).
func (o *roundsObs) judgeThreads(ck *checker) {
	if g, leak := o.leaking(func(r reading) int { return r.Threads }); leak {
		ck.Fatalf("threads grew with every round, by %d over %d connections\n  %s", g, (leakRounds-1)*leakConns, o.summary())
	}
	if g, _ := o.growth(func(r reading) int { return r.Goroutines }); g > leakConns/4 {
		ck.Fatalf("goroutines grew by %d over %d connections (%d before, %d after)", g, (leakRounds-1)*leakConns, o.base.Goroutines, o.after[len(o.after)-1].Goroutines)
	}
	if o.goroutine != nil {
		ck.Fatalf("goroutines of the server remained after Shutdown returned: %v", o.goroutine)
	}
}
