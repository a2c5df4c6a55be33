package conformance

import (
	"fmt"

	"github.com/echoconform/echoconform/echo"
)

// protocol is what the checks every server faces need to know of the
// protocol it declares: how its clients send and end a message, and how
// its replies are judged where the protocols differ. A protocol's own
// checks and its implementation of this interface live in its file
// (stream.go, oneshot.go, line.go); adding one is that file and a line in
// protocols.
type protocol interface {
	// messageSize is how many of n bytes a client sends as one message:
	// all of them, or no more than the server reads (max-msg).
	messageSize(n, maxMsg int) int
	// endMessage tells the server that the message sent on c is complete,
	// as the protocol's clients do.
	endMessage(c *conn) error
	// frame makes msg one whole message of the protocol, as its clients
	// send it: line appends the newline msg lacks.
	frame(msg []byte) []byte
	// answersEarly says whether the server may answer the first bytes of
	// a message and close: writing the rest may then fail, and data sent
	// only to make a child appear ends that child's connection.
	answersEarly() bool
	// judgeTrickled ends a message that was written on c a byte at a time
	// and judges its reply (ROBUST-3).
	judgeTrickled(ck *checker, c *conn, msg []byte)
	// judgeCrossTalk has k connections open at once each exchange its own
	// data, and fails ck when one gets back bytes it did not send
	// (CONC-3).
	judgeCrossTalk(ck *checker, k int)
}

// protocols are the protocols a server may declare.
var protocols = map[echo.Protocol]protocol{
	echo.Stream:  streamProtocol{},
	echo.Oneshot: oneshotProtocol{},
	echo.Line:    lineProtocol{},
}

// protocolOf returns the implementation of a declared protocol.
func protocolOf(p echo.Protocol) (protocol, error) {
	if impl, ok := protocols[p]; ok {
		return impl, nil
	}
	return nil, fmt.Errorf("unknown protocol %v", p)
}
