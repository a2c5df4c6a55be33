package conformance

import (
	"fmt"
	"net"
	"sync"
)

func init() {
	register("MODEL-1", check{applies: declaredModel, run: testModel})
	register("CONC-1", check{applies: always, run: testNotSerial})
	register("CONC-2", check{applies: always, run: testConcurrency})
	register("CONC-3", check{applies: always, run: testNoCrossTalk})
	register("CONC-4", check{applies: always, run: testBurst})
}

func declaredModel(ck *checker) string {
	if !ck.o.rules.declares() {
		return "no model declared (model " + string(ck.o.model) + ")"
	}
	return needsProcess(ck)
}

// testModel tests that the declared model holds: a child per connection
// for fork, none for thread (MODEL-1).
func testModel(ck *checker) {
	const k = 4
	server := ck.server().pid
	ck.snapshotTree("at rest")
	base := len(ck.liveChildren(server))
	cs := ck.openAccepted(k)
	// Deferred: the tree under load is worth seeing most when the
	// judgement fails (and ends the check).
	defer ck.snapshotTree(fmt.Sprintf("under load: %d connections open", len(cs)))
	ck.o.rules.judgeProcesses(ck, server, base, cs)
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
	ep := ck.server().ep
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
		ok := ck.poll(ck.dl.D, func() bool { return acceptedCount(ep, conns) == len(conns) })
		ck.concSample(len(conns), acceptedCount(ep, conns), 0)
		if !ok {
			break
		}
	}
	if accepted := acceptedCount(ep, conns); accepted < n {
		ck.Fatalf("the server sustained %d of %d connections held open at once: the others were not accepted within %v", accepted, n, ck.dl.D)
	}
	// Every connection sends, as the canonical clients do, without
	// half-closing, and waits for its reply while all the others stay open.
	var wg sync.WaitGroup
	errs := make([]error, n)
	var servedMu sync.Mutex
	servedSoFar := 0
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := ck.message(i)
			if errs[i] = c.write(msg); errs[i] == nil {
				_, errs[i] = ck.expectEcho(c, msg)
			}
			if errs[i] == nil {
				// Served over time, for the report's curve.
				servedMu.Lock()
				servedSoFar++
				ck.concSample(n, n, servedSoFar)
				servedMu.Unlock()
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
		ck.Fatalf("the server accepted all %d connections held open at once but served only %d within %v (first failure: %v)", n, served, ck.dl.D, firstErr)
	}
	ck.note("sustained %d of %d connections held open at once", served, n)
}

// testNoCrossTalk tests that concurrent connections each get their own
// bytes back (CONC-3).
func testNoCrossTalk(ck *checker) {
	ck.o.proto.judgeCrossTalk(ck, 8)
}

// testBurst tests that 8 clients connecting at the same moment are all
// served, and that the listen backlog leaves room for all of them
// (CONC-4). The backlog is what decides whether a client of a burst waits
// a second for a SYN retransmit: a queue that holds the burst never drops
// a SYN, however slowly the server accepts, and one that does not drops
// them whenever the server is slower than the clients. sock_diag reports
// it (a listener's idiag_wqueue), so the verdict depends on what the
// server asked of listen(2), not on how fast this machine runs.
func testBurst(ck *checker) {
	const k = 8
	in := ck.server()
	lns, err := in.ep.listeners()
	if err != nil || len(lns) == 0 {
		ck.skip("the listener of %s is not visible to sock_diag here, so its backlog cannot be read (%v)", in.ep, err)
	}
	// Linux queues backlog + 1 connections; listeners sharing the port
	// (SO_REUSEPORT) each take their share of a burst.
	room := 0
	for _, ln := range lns {
		room += ln.Backlog + 1
	}
	var wg sync.WaitGroup
	errs := make([]error, k)
	startGate := make(chan struct{})
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			_, errs[i] = ck.dialExchange(i)
		}()
	}
	close(startGate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			ck.Fatalf("a burst of %d clients: client %d: %v", k, i, err)
		}
	}
	if room < k {
		ck.Fatalf("the listen backlog is %d (listen(2), as sock_diag shows it): the accept queue holds %d connections, fewer than a burst of %d clients; %s",
			room-len(lns), room, k, in.ep.refused())
	}
	ck.note("a burst of %d clients served; the listen backlog (%d) queues %d connections", k, room-len(lns), room)
}

func acceptedCount(ep endpoint, conns []*conn) int {
	cs := make([]net.Conn, len(conns))
	for i, c := range conns {
		cs[i] = c.c
	}
	k := 0
	for _, ok := range ep.accepted(cs) {
		if ok {
			k++
		}
	}
	return k
}
