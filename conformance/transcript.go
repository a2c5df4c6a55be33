package conformance

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/echoconform/echoconform/echo"
)

// Event is one step of a check's conversation with the server, or a change
// the harness saw in the server's children.
type Event struct {
	At   time.Duration `json:"at"`   // since the check started
	Conn int           `json:"conn"` // connection number within the check; 0 for a process event
	// Op is what happened: connect, send, recv, half-close, eof, reset (the
	// client's RST), close, server-reset (the server's RST), timeout, error;
	// fork and exit when the harness saw a child of the server appear or go
	// (when it looked: the event itself came earlier).
	Op   string `json:"op"`
	N    int    `json:"n"`             // bytes
	PID  int    `json:"pid,omitempty"` // fork, exit: the child
	Data string `json:"data,omitempty"`
}

func (e Event) String() string {
	s := fmt.Sprintf("%8.3fs conn %d %s", e.At.Seconds(), e.Conn, e.Op)
	if e.Conn == 0 && e.PID != 0 {
		s = fmt.Sprintf("%8.3fs child %d %s", e.At.Seconds(), e.PID, e.Op)
	}
	if e.N > 0 {
		s += fmt.Sprintf(" %d bytes", e.N)
	}
	if e.Data != "" {
		s += " " + e.Data
	}
	return s
}

// ConnInfo is what the harness learnt of one connection of a check.
type ConnInfo struct {
	Conn int `json:"conn"`
	PID  int `json:"pid"` // the process that handled it, as the reply's {pid} named it
}

// Mismatch is the last reply of a check that was not what was sent: the
// bytes around where it first differs, for a report to show side by side.
type Mismatch struct {
	Conn int `json:"conn"`
	// Prefix is the prefix the reply started with; PrefixError says why
	// it did not start with one (then Received is the whole reply).
	Prefix      string `json:"prefix,omitempty"`
	PrefixError string `json:"prefix_error,omitempty"`
	SentLen     int    `json:"sent_len"`
	ReceivedLen int    `json:"received_len"` // after the prefix
	// Offset is the first byte of the echo that differs from what was sent
	// (or, when one is a leading part of the other, where the shorter ends).
	Offset int `json:"offset"`
	// Sent and Received are the bytes from Start on, at most
	// mismatchWindow of each: what was sent is what the echo should be.
	Start    int    `json:"start"`
	Sent     []byte `json:"sent"`
	Received []byte `json:"received"`
}

// The transcript keeps the first and the last events of a check, so that a
// report shows how the conversation began and how it ended, in bounded
// memory.
const (
	keepHead       = 100
	keepTail       = 100
	mismatchBefore = 64  // bytes of context before the first difference
	mismatchWindow = 512 // bytes kept of each side
)

// transcript records a check's events, what the replies told of the
// connections' handlers, and the last reply that went wrong.
type transcript struct {
	mu       sync.Mutex
	start    time.Time
	head     []Event // the first keepHead events
	tail     []Event // the last keepTail events after them
	dropped  int     // events between head and tail that were not kept
	nconn    int
	handlers map[int]int // conn -> PID
	mismatch *Mismatch
	kids     map[int]bool // the server's children at the last look; nil before it
}

func (tr *transcript) add(conn int, op string, b []byte, n int) {
	e := Event{Conn: conn, Op: op, N: n}
	if b != nil {
		e.Data = show(b)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.addLocked(e)
}

func (tr *transcript) addLocked(e Event) {
	e.At = time.Since(tr.start)
	if len(tr.head) < keepHead {
		tr.head = append(tr.head, e)
		return
	}
	if len(tr.tail) == keepTail {
		copy(tr.tail, tr.tail[1:])
		tr.tail = tr.tail[:keepTail-1]
		tr.dropped++
	}
	tr.tail = append(tr.tail, e)
}

// addError records a failed read or write, as what it was when that is
// an event of the conversation (the server's reset, a deadline passed).
func (tr *transcript) addError(conn int, err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		tr.add(conn, "timeout", nil, 0)
	case isReset(err):
		tr.add(conn, "server-reset", nil, 0)
	default:
		tr.add(conn, "error", []byte(err.Error()), 0)
	}
}

// lastStep describes the last thing the client did, for a message.
func (tr *transcript) lastStep() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	all := append(slices.Clip(tr.head), tr.tail...)
	for i := len(all) - 1; i >= 0; i-- {
		switch e := all[i]; e.Op {
		case "error", "recv", "eof", "timeout", "server-reset", "fork", "exit":
		default:
			s := fmt.Sprintf("conn %d %s", e.Conn, e.Op)
			if e.N > 0 {
				s += fmt.Sprintf(" %d bytes", e.N)
			}
			return s
		}
	}
	return "no client step yet"
}

// reset forgets everything: a property check's new case starts afresh, so
// that the transcript of a failure is that of its (shrunk) case.
func (tr *transcript) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.head, tr.tail, tr.dropped, tr.nconn = nil, nil, 0, 0
	tr.handlers, tr.mismatch, tr.kids = nil, nil, nil
}

// snapshot returns the events kept, in order, and how many were dropped
// between the first keepHead and the last keepTail.
func (tr *transcript) snapshot() ([]Event, int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append(slices.Clone(tr.head), tr.tail...), tr.dropped
}

// conns returns the handlers the replies named, by connection.
func (tr *transcript) conns() []ConnInfo {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []ConnInfo
	for c, pid := range tr.handlers {
		out = append(out, ConnInfo{Conn: c, PID: pid})
	}
	slices.SortFunc(out, func(a, b ConnInfo) int { return a.Conn - b.Conn })
	return out
}

func (tr *transcript) lastMismatch() *Mismatch {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.mismatch
}

// verify is verifyReply that also keeps what the reply showed: the process
// that handled the connection, and where a wrong reply first differs.
func (tr *transcript) verify(conn int, t echo.Template, got, want []byte) (echo.Values, error) {
	v, err := verifyReply(t, got, want)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if v.PID > 0 {
		if tr.handlers == nil {
			tr.handlers = map[int]int{}
		}
		tr.handlers[conn] = v.PID
	}
	if err != nil {
		tr.mismatch = newMismatch(conn, t, got, want)
	}
	return v, err
}

func newMismatch(conn int, t echo.Template, got, want []byte) *Mismatch {
	m := &Mismatch{Conn: conn, SentLen: len(want)}
	data := got
	if _, n, err := t.Match(got); err != nil {
		m.PrefixError = fmt.Sprintf("the reply does not start with the prefix %q: %v", t, err)
	} else {
		m.Prefix, data = string(got[:n]), got[n:]
	}
	m.ReceivedLen = len(data)
	m.Offset = firstDiff(data, want)
	if m.Offset < 0 {
		m.Offset = min(len(data), len(want))
	}
	m.Start = max(0, m.Offset-mismatchBefore)
	window := func(b []byte) []byte {
		if m.Start >= len(b) {
			return []byte{}
		}
		return slices.Clone(b[m.Start:min(len(b), m.Start+mismatchWindow)])
	}
	m.Sent, m.Received = window(want), window(data)
	return m
}

// sawChildren records the children of the server that appeared or went
// since the harness last looked (on the first look, those that are there).
func (tr *transcript) sawChildren(kids []int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	now := make(map[int]bool, len(kids))
	for _, k := range kids {
		now[k] = true
		if !tr.kids[k] {
			tr.addLocked(Event{Op: "fork", PID: k})
		}
	}
	for _, k := range sortedPIDs(tr.kids) {
		if !now[k] {
			tr.addLocked(Event{Op: "exit", PID: k})
		}
	}
	tr.kids = now
}

func sortedPIDs(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// liveChildren is liveChildren(pid), recorded in the check's transcript.
func (ck *checker) liveChildren(pid int) []int {
	kids := liveChildren(pid)
	ck.tr.sawChildren(kids)
	return kids
}
