package conformance

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

func init() {
	register("MODEL-1", check{applies: declaredModel, run: testModel})
	register("CONC-1", check{applies: always, run: testNotSerial})
	register("CONC-2", check{applies: always, run: testConcurrency})
	register("CONC-3", check{applies: always, run: testNoCrossTalk})
	register("CONC-4", check{applies: always, run: testBurst})
}

func declaredModel(ck *checker) string {
	if ck.o.model == ModelAny {
		return "no model declared (model any)"
	}
	return needsProcess(ck)
}

// testModel tests that the declared model holds: a child per connection
// for fork, none for thread (MODEL-1).
func testModel(ck *checker) {
	const k = 4
	server := ck.server().pid
	base := len(liveChildren(server))
	cs := ck.openAccepted(k)
	if ck.o.model == ModelFork && ck.o.protocol == echo.Stream {
		// Some servers start the child when data arrives. (A oneshot child
		// would answer and exit at once: there the children must exist
		// before any data.)
		if kids := liveChildren(server); len(kids) < base+k {
			for i, c := range cs {
				if err := c.write(ck.message(i)); err != nil {
					ck.Fatal(err)
				}
			}
		}
	}
	switch ck.o.model {
	case ModelFork:
		kids := ck.childrenWith(base, k)
		if len(kids) < base+k {
			ck.Fatalf("with %d connections open the server %d had %d live children, %d at rest: want a child per connection (model fork)", k, server, len(kids), base)
		}
	case ModelThread:
		var kids []int
		if ck.poll(ck.o.scale(200*time.Millisecond), func() bool { kids = liveChildren(server); return len(kids) > base }) {
			ck.Fatalf("with %d connections open the server %d started child processes %v (%d at rest): want none (model thread)", k, server, kids, base)
		}
	}
}

// testNotSerial tests that the last of 4 open, idle connections is served
// (CONC-1).
func testNotSerial(ck *checker) {
	var last *conn
	for i := 0; i < 4; i++ {
		c, err := ck.dial()
		if err != nil {
			ck.Fatal(err)
		}
		last = c
	}
	if _, err := ck.exchange(last, ck.message(4)); err != nil {
		ck.Fatalf("with 3 other connections open and idle, the 4th was not served: %v", err)
	}
}

// testConcurrency tests that N connections held open at once are all
// accepted and served, and reports how many the server sustained (CONC-2).
func testConcurrency(ck *checker) {
	n := ck.o.concurrency
	port := ck.server().port
	// In batches of 4, each once the batch before is accepted, so that a
	// short listen backlog (CONC-4's business) does not count against
	// concurrency: a batch left unaccepted for D marks the limit.
	var conns []*conn
	for len(conns) < n {
		for i := 0; i < 4 && len(conns) < n; i++ {
			c, err := ck.dial()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		if !ck.poll(ck.o.d(), func() bool { return acceptedCount(port, conns) == len(conns) }) {
			break
		}
	}
	if accepted := acceptedCount(port, conns); accepted < n {
		ck.Fatalf("the server sustained %d of %d connections held open at once: the others were not accepted within %v", accepted, n, ck.o.d())
	}
	// Every connection sends, as the canonical clients do, without
	// half-closing, and waits for its reply while all the others stay open.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := ck.message(i)
			if errs[i] = c.write(msg); errs[i] == nil {
				_, errs[i] = ck.expectEcho(c, msg)
			}
		}()
	}
	wg.Wait()
	served, firstErr := 0, error(nil)
	for _, err := range errs {
		if err == nil {
			served++
		} else if firstErr == nil {
			firstErr = err
		}
	}
	if served < n {
		ck.Fatalf("the server accepted all %d connections held open at once but served only %d within %v (first failure: %v)", n, served, ck.o.d(), firstErr)
	}
	ck.note("sustained %d of %d connections held open at once", served, n)
}

// testNoCrossTalk tests that concurrent connections each get their own
// bytes back (CONC-3).
func testNoCrossTalk(ck *checker) {
	const k = 8
	if ck.o.protocol == echo.Oneshot {
		var wg sync.WaitGroup
		errs := make([]error, k)
		for i, c := range ck.openAccepted(k) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := seeded(uint64(100+i), min(ck.o.maxMsg, 512))
				_, errs[i] = ck.exchange(c, msg)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				ck.Fatal(err)
			}
		}
		return
	}
	es := make([]*echoConn, k)
	for i := range es {
		e, err := ck.openEcho()
		if err != nil {
			ck.Fatal(err)
		}
		es[i] = e
		defer func() { e.close(); <-e.done }()
	}
	// Interleaved writes, round robin, each connection its own data.
	for round := 0; round < 4; round++ {
		for i, e := range es {
			if err := e.send(seeded(uint64(1000*i+round), 100+1000*round)); err != nil {
				ck.Fatal(err)
			}
		}
	}
	// Wait a while with the connections open, then half-close: a server that
	// holds its echo until EOF, or loses data at a half-close, is other
	// checks' business.
	for _, e := range es {
		_ = e.waitEcho(ck.o.prefix, ck.o.d()/8)
		if err := e.halfClose(); err != nil {
			ck.Fatal(err)
		}
	}
	for _, e := range es {
		if err := e.waitEcho(ck.o.prefix, ck.o.d()); err != nil {
			ck.Fatalf("%d connections at once, interleaved writes: %v", k, err)
		}
	}
}

// testBurst tests that 8 clients connecting at the same moment are all
// served promptly (CONC-4).
func testBurst(ck *checker) {
	const k = 8
	limit := ck.o.scale(500 * time.Millisecond)
	port := ck.server().port
	var wg sync.WaitGroup
	// setup is when a client was served, or else accepted: a server that
	// answers late (after the half-close, say) has not stalled the setup.
	// late marks a client neither served nor accepted within limit.
	setup := make([]time.Duration, k)
	late := make([]bool, k)
	errs := make([]error, k)
	startGate := make(chan struct{})
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			setup[i], late[i], errs[i] = ck.burstClient(i, port, limit)
		}()
	}
	close(startGate)
	wg.Wait()
	slowest, stalled := time.Duration(0), 0
	for i := range setup {
		if errs[i] != nil {
			ck.Fatalf("a burst of %d clients: client %d: %v", k, i, errs[i])
		}
		slowest = max(slowest, setup[i])
		if late[i] {
			stalled++
		}
	}
	if stalled > 0 {
		ck.Fatalf("a burst of %d clients connecting at once: %d were neither served nor accepted within %v; the slowest was set up after %v (a listen backlog too short makes clients wait for a SYN retransmit)",
			k, stalled, limit, slowest.Round(time.Millisecond))
	}
	ck.note("a burst of %d clients: slowest set up after %v", k, slowest.Round(time.Millisecond))
}

// burstClient connects, sends message i and waits up to limit for its
// echo; without it, it asks /proc whether the server accepted the
// connection. Then it completes the exchange, as exchange does, and checks
// the reply. A server /proc cannot see counts as not accepted.
func (ck *checker) burstClient(i, port int, limit time.Duration) (setup time.Duration, late bool, err error) {
	t0 := time.Now()
	c, err := ck.dial()
	if err != nil {
		return 0, false, err
	}
	defer c.close()
	msg := ck.message(i)
	if err := c.write(msg); err != nil {
		return 0, false, err
	}
	var got []byte
	rerr := error(os.ErrDeadlineExceeded)
	if connected := time.Since(t0); connected < limit {
		got, rerr = ck.readEcho(c, nil, msg, limit-connected)
	} else {
		late = true // the connect alone took longer: a SYN was dropped
	}
	setup = time.Since(t0)
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		if !late {
			accepted, _ := proc.Accepted(port, c.localPort())
			late = !accepted
		}
		if err := c.halfClose(); err != nil {
			return setup, late, err
		}
		got, rerr = ck.readEcho(c, got, msg, ck.o.d())
	}
	_, err = ck.verifyEcho(c, got, msg, rerr)
	return setup, late, err
}

func acceptedCount(port int, conns []*conn) int {
	ports, _ := proc.AcceptedPorts(port)
	k := 0
	for _, c := range conns {
		if ports[c.localPort()] {
			k++
		}
	}
	return k
}
