package conformance

import (
	"fmt"
	"slices"
)

// Model is the concurrency model a server declares (SPEC.md section 3).
type Model string

const (
	ModelAny    Model = "any"    // check no model
	ModelFork   Model = "fork"   // a child process per connection
	ModelThread Model = "thread" // every connection inside the server process
)

// ParseModel parses "any", "fork" or "thread".
func ParseModel(s string) (Model, error) {
	switch m := Model(s); m {
	case ModelAny, ModelFork, ModelThread:
		return m, nil
	}
	return "", fmt.Errorf("unknown model %q (want fork, thread or any)", s)
}

// handlerProblem says what is wrong with a reply naming pid as the process
// that handled its connection, or "": the server process itself (thread),
// one of its children alive while the connection was open (fork), either
// (any).
func (m Model) handlerProblem(pid, server int, kids []int) string {
	isChild := slices.Contains(kids, pid)
	switch {
	case m == ModelThread && pid != server:
		return fmt.Sprintf("{pid} is %d, want the server process %d (model thread)", pid, server)
	case m == ModelFork && !isChild:
		return fmt.Sprintf("{pid} is %d, want a child of the server %d that was alive while the connection was open; its children were %v", pid, server, kids)
	case m == ModelAny && pid != server && !isChild:
		return fmt.Sprintf("{pid} is %d, neither the server %d nor one of its children %v", pid, server, kids)
	}
	return ""
}

// parentPIDs are what {ppid} may name: the parent of the handling process,
// the server's own parent for thread, the server for fork; with model any,
// {pid} (handled, or -1 when the template lacks it) tells which.
func (m Model) parentPIDs(handled, server, serverParent int) []int {
	switch {
	case m == ModelFork:
		return []int{server}
	case m == ModelThread:
		return []int{serverParent}
	case handled >= 0 && handled != server:
		return []int{server}
	case handled == server:
		return []int{serverParent}
	}
	return []int{server, serverParent}
}

// awaitHandler waits, up to D, until a server of model fork has a child to
// handle a connection: a fresh server that forks per connection has none until it
// forked for this one, and a shutdown before that would judge a server that
// never had a child in flight. A pool of spare children has one already
// (and may hand the connection over only once data arrives). For the other
// models the server process has the connection once it accepted.
func (ck *checker) awaitHandler() {
	if ck.o.model != ModelFork {
		return
	}
	server := ck.server().pid
	ck.poll(ck.dl.D, func() bool { return len(liveChildren(server)) > 0 })
}
