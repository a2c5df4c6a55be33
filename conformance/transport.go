package conformance

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/echoconform/echoconform/internal/proc"
)

// A transport is how clients reach a server: TCP over loopback, or a
// Unix-domain stream socket. Each lives in a file of its own
// (transport_tcp.go, transport_unix.go) and registers itself; a target
// says which one its server uses, and the checks ask the server's endpoint
// their socket questions, never which transport it is.
type transport interface {
	name() string // in reports: "tcp", "unix"
	// parse reads an address a user gave (Address, -addr); ok is false
	// when the address is not this transport's.
	parse(addr string) (ep endpoint, ok bool, err error)
	// fresh is a new address for a server the harness starts.
	fresh() (endpoint, error)
	// listenFresh is a listener on a new address, for a server in this
	// process.
	listenFresh() (endpoint, net.Listener, error)
	// placeholders are the words of a command's arguments that name an
	// address of this transport; a command that uses one uses it.
	placeholders() []string
	// noFile says why a server on this transport leaves no file to remove
	// (SHUT-8), or "".
	noFile() string
}

// An endpoint is one server's address, and what the kernel shows of the
// sockets there.
type endpoint interface {
	transport() transport
	String() string // in messages
	// dial connects within d.Timeout.
	dial(d net.Dialer, dl deadlines) (net.Conn, error)
	// local reports whether the server's sockets are this machine's, where
	// the kernel shows them.
	local() bool
	// expand puts the address into a command's argument; env is what the
	// command's environment carries of it.
	expand(arg string) string
	env() []string
	// listeners are the listening sockets a connect to the address
	// reaches, with their backlog and queue (none: it is refused).
	listeners() ([]proc.Listener, error)
	// accepted reports, for each client connection, whether a process has
	// accepted the server's side of it.
	accepted(cs []net.Conn) map[net.Conn]bool
	// inode is the server's side's socket inode: 0 until accepted.
	inode(c net.Conn) (uint64, error)
	// recvQueue is what the server's side has received and not read;
	// found false when the kernel does not show it.
	recvQueue(c net.Conn) (queued int, accepted, found bool, err error)
	// queues are the server's side's queues (ROBUST-4), the client having
	// written sent bytes on c and read none; SendFull says the server's
	// write to c waits.
	queues(c net.Conn, sent int) (q proc.Queues, found bool, err error)
	// leftover describes what the server left at the address once it
	// stopped (a socket file), or "".
	leftover() string
	// release removes what fresh made; idempotent. owned is the
	// directory it removes ("" for none), which the supervisor removes too
	// when the harness is killed.
	release()
	owned() string
	// refused says what a client meets beyond a full listen backlog
	// (CONC-4).
	refused() string
}

// transports are every transport, TCP first (the default); each file
// registers its own.
var transports []transport

func registerTransport(t transport) { transports = append(transports, t) }

func transportNamed(name string) transport {
	for _, t := range transports {
		if t.name() == name {
			return t
		}
	}
	panic("conformance: no transport " + name)
}

// parseAddress reads an address a user gave, in the first transport that
// takes it.
func parseAddress(addr string) (endpoint, error) {
	for _, t := range transports {
		if ep, ok, err := t.parse(addr); ok || err != nil {
			return ep, err
		}
	}
	return nil, fmt.Errorf("bad address %q", addr)
}

// commandTransport is the transport a command's arguments name by their
// placeholders (TCP when they name none: $PORT is set); naming two is an
// error.
func commandTransport(argv []string) (transport, error) {
	var used []transport
	var words []string
	for _, t := range transports {
		for _, p := range t.placeholders() {
			if slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, p) }) {
				used = append(used, t)
				words = append(words, t.placeholders()...)
				break
			}
		}
	}
	switch len(used) {
	case 0:
		return transports[0], nil
	case 1:
		return used[0], nil
	}
	return nil, fmt.Errorf("the command names addresses of %d transports (%s): give one", len(used), strings.Join(words, " "))
}

// listenerPIDs are the processes that hold a listener of ep.
func listenerPIDs(ep endpoint) ([]int, error) {
	ls, err := ep.listeners()
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	inodes := make([]uint64, len(ls))
	for i, l := range ls {
		inodes[i] = l.Inode
	}
	return proc.HoldersOf(inodes)
}

// isListening reports whether a connect to ep reaches a listener.
func isListening(ep endpoint) (bool, error) {
	ls, err := ep.listeners()
	return len(ls) > 0, err
}
