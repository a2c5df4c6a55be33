package conformance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

func init() {
	register("PREFIX-1", check{applies: always, run: testPrefixExact})
	register("PREFIX-2", check{applies: needs("pid"), run: testPrefixPID})
	register("PREFIX-3", check{applies: needs("ppid"), run: testPrefixPPID})
	register("PREFIX-4", check{applies: always, run: testPrefixEmpty})
}

func always(*checker) string { return "" }

// needsProcess applies when the server's process can be read in /proc.
func needsProcess(ck *checker) string { return ck.target.caps().process() }

func needs(field string) func(*checker) string {
	return func(ck *checker) string {
		if !ck.o.prefix.Uses(field) {
			return fmt.Sprintf("the prefix template %q has no {%s}", ck.o.prefix, field)
		}
		return needsProcess(ck)
	}
}

// message is a small message for connection i that fits max-msg.
func (ck *checker) message(i int) []byte {
	m := []byte(fmt.Sprintf("connection %d says hello\n", i))
	return m[:min(len(m), ck.o.maxMsg)]
}

// exchange sends msg, framed as the protocol's clients do, and checks the
// reply. It waits a while for the reply
// with the connection open and half-closes only when none came: so a check
// that uses it depends neither on interactivity nor on how a oneshot server
// decides that a message is complete (STREAM-2 and ONESHOT-1 check those),
// nor does it trip over a server that loses data at a half-close
// (STREAM-1/3 check that).
func (ck *checker) exchange(c *conn, msg []byte) (echo.Values, error) {
	msg = ck.o.proto.frame(msg)
	if err := c.write(msg); err != nil {
		return echo.Values{}, err
	}
	got, err := ck.readEcho(c, nil, msg, ck.dl.D/4)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if err := c.halfClose(); err != nil {
			return echo.Values{}, err
		}
		got, err = ck.readEcho(c, got, msg, ck.dl.D)
	}
	return ck.verifyEcho(c, got, msg, err)
}

// dialExchange opens a connection, exchanges message i and closes it.
func (ck *checker) dialExchange(i int) (echo.Values, error) {
	c, err := ck.dial()
	if err != nil {
		return echo.Values{}, err
	}
	defer c.close()
	return ck.exchange(c, ck.message(i))
}

// testPrefixExact tests that every reply starts with the rendered template,
// exactly once (PREFIX-1).
func testPrefixExact(ck *checker) {
	for i := 0; i < 3; i++ {
		if _, err := ck.dialExchange(i); err != nil {
			ck.Fatal(err)
		}
	}
	// Data that looks like a prefix must not confuse the server.
	c, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	defer c.close()
	msg := ck.o.prefix.Render(12345, 1)
	msg = append(msg, "123: {pid}"...)
	if _, err := ck.exchange(c, msg[:min(len(msg), ck.o.maxMsg)]); err != nil {
		ck.Fatal(err)
	}
}

// openAccepted opens k connections, one after another, each once the
// server has accepted the one before: a short listen backlog must not make
// the check wait for SYN retransmits.
func (ck *checker) openAccepted(k int) []*conn {
	var cs []*conn
	for i := 0; i < k; i++ {
		cs = append(cs, ck.dialAccepted())
	}
	return cs
}

// dialAccepted opens a connection and waits until the server accepted it.
func (ck *checker) dialAccepted() *conn {
	c, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	if !ck.poll(ck.dl.D, func() bool { return ck.server().ep.accepted([]net.Conn{c.c})[c.c] }) {
		ck.Fatalf("conn %d: the server did not accept it within %v", c.id, ck.dl.D)
	}
	return c
}

// poll calls cond every few milliseconds until it holds or wait passes.
func (ck *checker) poll(wait time.Duration, cond func() bool) bool {
	limit := time.NewTimer(wait)
	defer limit.Stop()
	tick := time.NewTicker(ck.dl.poll)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-limit.C:
			return cond()
		case <-ck.ctx.Done():
			return false // the server died, or the check is over
		case <-tick.C:
		}
	}
}

// liveChildren are the children of pid that are not zombies.
func liveChildren(pid int) []int {
	kids, _ := proc.Children(pid)
	var live []int
	for _, k := range kids {
		if info, err := proc.Read(k); err == nil && info.State != "Z" {
			live = append(live, k)
		}
	}
	return live
}

// childrenWith waits, as long as the model gives children to appear, until
// the server has k more live children than before, and returns them.
func (ck *checker) childrenWith(base, k int) []int {
	var kids []int
	ck.poll(ck.o.rules.childWait(ck.dl), func() bool { kids = ck.liveChildren(ck.server().pid); return len(kids) >= base+k })
	return kids
}

// testPrefixPID tests that {pid} names the process that handled the
// connection, as the model says (PREFIX-2).
func testPrefixPID(ck *checker) {
	const k = 4
	server := ck.server().pid
	base := len(ck.liveChildren(server))
	cs := ck.openAccepted(k)
	kids := ck.childrenWith(base, k)
	seen := map[int]int{}
	for i, c := range cs {
		v, err := ck.exchange(c, ck.message(i))
		if err != nil {
			ck.Fatal(err)
		}
		if !slices.Contains(kids, v.PID) {
			// A pool may have started the child after the first look; the
			// connection is still open, so its child is alive now.
			kids = append(kids, ck.liveChildren(server)...)
		}
		if why := ck.o.rules.handlerProblem(v.PID, server, kids); why != "" {
			ck.Fatalf("conn %d: %s%s", c.id, why, whoIs(v.PID, server))
		}
		if j, dup := seen[v.PID]; dup && v.PID != server {
			ck.Fatalf("conns %d and %d, open at once, both name child %d in {pid}: each connection's child is its own", j, c.id, v.PID)
		}
		seen[v.PID] = c.id
	}
}

// whoIs says what a PID is, for failure messages.
func whoIs(pid, server int) string {
	info, err := proc.Read(pid)
	switch {
	case err != nil:
		return fmt.Sprintf(" (no process %d exists now)", pid)
	case pid == server:
		return " (that is the server process itself)"
	case info.PPID == server:
		return fmt.Sprintf(" (%d is a child of the server)", pid)
	}
	return fmt.Sprintf(" (%d is %q, child of %d)", pid, info.Comm, info.PPID)
}

// testPrefixPPID tests that {ppid} names the parent of the process that
// handled the connection (PREFIX-3).
func testPrefixPPID(ck *checker) {
	server := ck.server().pid
	info, err := proc.Read(server)
	if err != nil {
		ck.Fatalf("reading the server process %d: %v", server, err)
	}
	for i := 0; i < 2; i++ {
		v, err := ck.dialExchange(i)
		if err != nil {
			ck.Fatal(err)
		}
		// The declared model decides; with model any, {pid} (when the
		// template has it) tells a forked child from the server itself.
		want := ck.o.rules.parentPIDs(v.PID, server, info.PPID)
		if !slices.Contains(want, v.PPID) {
			ck.Fatalf("{ppid} is %d, want %v (server %d, its parent %d, model %s)%s", v.PPID, want, server, info.PPID, ck.o.model, whoIs(v.PPID, server))
		}
	}
}

// testPrefixEmpty tests that an empty connection gets nothing or the prefix
// alone, then EOF (PREFIX-4).
func testPrefixEmpty(ck *checker) {
	for i := 0; i < 2; i++ {
		c, err := ck.dial()
		if err != nil {
			ck.Fatal(err)
		}
		if err := c.halfClose(); err != nil {
			ck.Fatal(err)
		}
		got, err := readReplyLenient(c, 1<<20)
		c.close()
		if err != nil {
			ck.Fatalf("an empty connection, half-closed at once: %v (%d bytes came back)", err, len(got))
		}
		if len(got) == 0 {
			continue
		}
		if _, n, err := ck.o.prefix.Match(got); err != nil || n != len(got) {
			ck.Fatalf("an empty connection, half-closed at once, got %s: want nothing or exactly the prefix %q", show(got), ck.o.prefix)
		}
	}
}
