package conformance

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Model is the concurrency model a server declares (SPEC.md section 3).
type Model string

const (
	ModelAny    Model = "any"    // check no model
	ModelFork   Model = "fork"   // a child process per connection
	ModelThread Model = "thread" // every connection inside the server process
	ModelEvent  Model = "event"  // every connection inside the server process, by a fixed number of threads
)

// modelRules is what a model says about the server's processes, for the
// checks that judge them (MODEL-1, PREFIX-2, PREFIX-3) and for those that
// must wait for a connection's handler. Adding a model is a type with these
// methods and a line in models.
type modelRules interface {
	// declares says whether the model says anything MODEL-1 can check.
	declares() bool
	// judgeProcesses fails ck unless the server, with the accepted
	// connections cs open and base live children before them, runs them
	// as the model says (MODEL-1).
	judgeProcesses(ck *checker, server, base int, cs []*conn)
	// childPerConnection says whether each connection gets a child of its
	// own, which the server may start only after it accepted.
	childPerConnection() bool
	// childWait is how long new connections' children may take to appear.
	childWait(dl deadlines) time.Duration
	// handlerProblem says what is wrong with a reply naming pid as the
	// process that handled its connection, or "".
	handlerProblem(pid, server int, kids []int) string
	// parentPIDs are what {ppid} may name: the parent of the handling
	// process; handled is {pid}, or -1 when the template lacks it.
	parentPIDs(handled, server, serverParent int) []int
}

// models are the models a server may declare, in the order ParseModel
// lists them.
var models = []struct {
	name  Model
	rules modelRules
}{
	{ModelFork, forkModel{}},
	{ModelThread, threadModel{ModelThread}},
	{ModelEvent, eventModel{threadModel{ModelEvent}}},
	{ModelAny, anyModel{}},
}

// ParseModel parses "fork", "thread", "event" or "any".
func ParseModel(s string) (Model, error) {
	if m := Model(s); m.rules() != nil {
		return m, nil
	}
	var names []string
	for _, m := range models {
		names = append(names, string(m.name))
	}
	last := len(names) - 1
	return "", fmt.Errorf("unknown model %q (want %s or %s)", s, strings.Join(names[:last], ", "), names[last])
}

// rules returns the model's rules, or nil for an unknown model.
func (m Model) rules() modelRules {
	for _, r := range models {
		if r.name == m {
			return r.rules
		}
	}
	return nil
}

// forkModel: a child process per connection.
type forkModel struct{}

func (forkModel) declares() bool           { return true }
func (forkModel) childPerConnection() bool { return true }

func (forkModel) childWait(dl deadlines) time.Duration { return dl.D }

func (forkModel) judgeProcesses(ck *checker, server, base int, cs []*conn) {
	k := len(cs)
	// Some servers start the child when data arrives. (A server that
	// answers early, oneshot, has its child answer and exit at once: there
	// the children must exist before any data.)
	if !ck.o.proto.answersEarly() && len(ck.liveChildren(server)) < base+k {
		for i, c := range cs {
			if err := c.write(ck.message(i)); err != nil {
				ck.Fatal(err)
			}
		}
	}
	kids := ck.childrenWith(base, k)
	if len(kids) < base+k {
		ck.Fatalf("with %d connections open the server %d had %d live children, %d at rest: want a child per connection (model fork)", k, server, len(kids), base)
	}
}

// handlerProblem wants a child alive while the connection was open.
func (forkModel) handlerProblem(pid, server int, kids []int) string {
	if !slices.Contains(kids, pid) {
		return fmt.Sprintf("{pid} is %d, want a child of the server %d that was alive while the connection was open; its children were %v", pid, server, kids)
	}
	return ""
}

func (forkModel) parentPIDs(handled, server, serverParent int) []int { return []int{server} }

// threadModel: every connection inside the server process.
type threadModel struct{ name Model }

func (threadModel) declares() bool           { return true }
func (threadModel) childPerConnection() bool { return false }

// childWait is 0: no children are due.
func (threadModel) childWait(dl deadlines) time.Duration { return 0 }

func (m threadModel) judgeProcesses(ck *checker, server, base int, cs []*conn) {
	var kids []int
	if ck.poll(ck.dl.early, func() bool { kids = ck.liveChildren(server); return len(kids) > base }) {
		ck.Fatalf("with %d connections open the server %d started child processes %v (%d at rest): want none (model %s)", len(cs), server, kids, base, m.name)
	}
}

func (m threadModel) handlerProblem(pid, server int, kids []int) string {
	if pid != server {
		return fmt.Sprintf("{pid} is %d, want the server process %d (model %s)", pid, server, m.name)
	}
	return ""
}

func (threadModel) parentPIDs(handled, server, serverParent int) []int { return []int{serverParent} }

// eventModel: every connection inside the server process, served by a
// number of threads that does not grow with the number of connections.
type eventModel struct{ threadModel }

// eventConns is how many connections MODEL-1 opens, twice, beside the 4
// it holds open, to see whether the server's threads grow with them.
const eventConns = 16

// judgeProcesses wants no child, as for thread, and threads (in process:
// goroutines, the server sharing the harness's threads) that do not grow
// from 4+eventConns connections to 4+2 eventConns, each served, beyond
// what the user declared. The first ones bring a runtime's helper threads
// to their plateau; nothing is closed in between, so no thread that is
// about to end counts.
func (m eventModel) judgeProcesses(ck *checker, server, base int, cs []*conn) {
	m.threadModel.judgeProcesses(ck, server, base, cs)
	open := 0
	serve := func(cs []*conn) {
		open += len(cs)
		for i, c := range cs {
			if _, err := ck.exchange(c, ck.message(i)); err != nil {
				ck.Fatalf("with %d connections open: %v", open, err)
			}
		}
	}
	count, what := func() int { return ck.read().Threads }, "threads"
	if ck.server().srv != nil {
		count, what = func() int { return ck.read().Goroutines }, "goroutines"
	}
	serve(cs)
	serve(ck.openAccepted(eventConns))
	before, openBefore := count(), open
	serve(ck.openAccepted(eventConns))
	after := count()
	ck.note("%d %s with %d connections open and served, %d with %d", after, what, open, before, openBefore)
	if after > before+ck.o.eventThreads {
		ck.Fatalf("the server ran %d %s with %d connections open and served, %d with %d: want no more (model event, %d more declared: -event-threads)",
			after, what, open, before, openBefore, ck.o.eventThreads)
	}
}

// anyModel: no model declared; the server process or one of its children
// may handle a connection.
type anyModel struct{}

func (anyModel) declares() bool           { return false }
func (anyModel) childPerConnection() bool { return false }

// childWait is brief: children, if any, are not promised.
func (anyModel) childWait(dl deadlines) time.Duration { return dl.early }

// judgeProcesses is never called: any declares nothing for MODEL-1.
func (anyModel) judgeProcesses(ck *checker, server, base int, cs []*conn) {}

func (anyModel) handlerProblem(pid, server int, kids []int) string {
	if pid != server && !slices.Contains(kids, pid) {
		return fmt.Sprintf("{pid} is %d, neither the server %d nor one of its children %v", pid, server, kids)
	}
	return ""
}

// parentPIDs lets {pid} tell a forked child from the server itself.
func (anyModel) parentPIDs(handled, server, serverParent int) []int {
	switch {
	case handled >= 0 && handled != server:
		return []int{server}
	case handled == server:
		return []int{serverParent}
	}
	return []int{server, serverParent}
}

// awaitHandler waits, up to D, until a server whose model gives each
// connection a child has one to handle a connection: a fresh server that
// forks per connection has none until it forked for this one, and a
// shutdown before that would judge a server that never had a child in
// flight. A pool of spare children has one already (and may hand the
// connection over only once data arrives). For the other models the
// server process has the connection once it accepted.
func (ck *checker) awaitHandler() {
	if !ck.o.rules.childPerConnection() {
		return
	}
	server := ck.server().pid
	ck.poll(ck.dl.D, func() bool { return len(ck.liveChildren(server)) > 0 })
}
