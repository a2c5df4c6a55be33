package conformance

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one step of a check's conversation with the server.
type Event struct {
	At   time.Duration `json:"at"`   // since the check started
	Conn int           `json:"conn"` // connection number within the check
	Op   string        `json:"op"`   // connect, send, recv, half-close, eof, reset, close, error
	N    int           `json:"n"`    // bytes
	Data string        `json:"data,omitempty"`
}

func (e Event) String() string {
	s := fmt.Sprintf("%8.3fs conn %d %s", e.At.Seconds(), e.Conn, e.Op)
	if e.N > 0 {
		s += fmt.Sprintf(" %d bytes", e.N)
	}
	if e.Data != "" {
		s += " " + e.Data
	}
	return s
}

// transcript keeps the last events of a check, bounded.
type transcript struct {
	mu     sync.Mutex
	start  time.Time
	events []Event
	nconn  int
}

const maxEvents = 64

func (tr *transcript) add(conn int, op string, b []byte, n int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	e := Event{At: time.Since(tr.start), Conn: conn, Op: op, N: n}
	if b != nil {
		e.Data = show(b)
	}
	if len(tr.events) == maxEvents {
		copy(tr.events, tr.events[1:])
		tr.events = tr.events[:maxEvents-1]
	}
	tr.events = append(tr.events, e)
}

// lastStep describes the last thing the client did, for a message.
func (tr *transcript) lastStep() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := len(tr.events) - 1; i >= 0; i-- {
		if e := tr.events[i]; e.Op != "error" && e.Op != "recv" && e.Op != "eof" {
			s := fmt.Sprintf("conn %d %s", e.Conn, e.Op)
			if e.N > 0 {
				s += fmt.Sprintf(" %d bytes", e.N)
			}
			return s
		}
	}
	return "no client step yet"
}

func (tr *transcript) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.events = nil
	tr.nconn = 0
}

func (tr *transcript) snapshot() []Event {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]Event(nil), tr.events...)
}

// conn is one client connection, with a deadline on every operation.
type conn struct {
	c   *net.TCPConn
	id  int
	d   time.Duration // its reads' wait
	dl  deadlines
	tr  *transcript
	eof bool
	// firstRecv is when readUntil first got bytes (ONESHOT-4 times a reply).
	firstRecv time.Time
}

func (ck *checker) dial() (*conn, error) { return ck.dialWith(net.Dialer{}) }

// dialReceiveBuffer dials with a receive buffer of n bytes, set before the
// connection exists: the window it offers the server stays that small.
func (ck *checker) dialReceiveBuffer(n int) (*conn, error) {
	return ck.dialWith(net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n) }); err != nil {
			return err
		}
		return serr
	}})
}

func (ck *checker) dialWith(d net.Dialer) (*conn, error) {
	if err := ck.stopped(); err != nil {
		return nil, fmt.Errorf("no new connection: %v", err)
	}
	in := ck.server()
	ck.tr.mu.Lock()
	ck.tr.nconn++
	id := ck.tr.nconn
	ck.tr.mu.Unlock()
	d.Timeout = ck.dl.D
	nc, err := d.Dial("tcp", in.addr)
	if err != nil {
		ck.tr.add(id, "error", nil, 0)
		return nil, fmt.Errorf("conn %d: connect to %s: %v", id, in.addr, err)
	}
	c := &conn{c: nc.(*net.TCPConn), id: id, d: ck.dl.D, dl: ck.dl, tr: &ck.tr}
	ck.tr.add(id, "connect", nil, 0)
	ck.mu.Lock()
	ck.conns = append(ck.conns, c)
	ck.mu.Unlock()
	return c, nil
}

// localPort is the client side's port, to find the connection in /proc.
func (c *conn) localPort() int { return c.c.LocalAddr().(*net.TCPAddr).Port }

func (c *conn) write(p []byte) error {
	// Large writes get time in proportion to their size.
	_ = c.c.SetWriteDeadline(time.Now().Add(c.d - c.dl.D + c.dl.transfer(len(p))))
	n, err := c.c.Write(p)
	c.tr.add(c.id, "send", p[:n], n)
	if err != nil {
		c.tr.add(c.id, "error", []byte(err.Error()), 0)
		return &opError{conn: c.id, op: fmt.Sprintf("write %d bytes", len(p)), err: err}
	}
	return nil
}

func (c *conn) halfClose() error {
	c.tr.add(c.id, "half-close", nil, 0)
	if err := c.c.CloseWrite(); err != nil {
		return fmt.Errorf("conn %d: half-close: %v", c.id, err)
	}
	return nil
}

// abort resets the connection: SO_LINGER 0 makes close send RST.
func (c *conn) abort() {
	c.tr.add(c.id, "reset", nil, 0)
	_ = c.c.SetLinger(0)
	_ = c.c.Close()
}

func (c *conn) close() {
	c.tr.add(c.id, "close", nil, 0)
	_ = c.c.Close()
}

// readUntil reads into buf until done(buf) holds, EOF, an error, or the
// deadline; it returns what it read. A timeout is reported as an error that
// says how long it waited.
func (c *conn) readUntil(buf []byte, limit int, wait time.Duration, done func([]byte) bool) ([]byte, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(wait))
	tmp := make([]byte, 64<<10)
	for !done(buf) {
		if len(buf) >= limit {
			return buf, fmt.Errorf("conn %d: the server sent more than the %d bytes the harness reads", c.id, limit)
		}
		n, err := c.c.Read(tmp[:min(len(tmp), limit-len(buf))])
		if n > 0 {
			if c.firstRecv.IsZero() {
				c.firstRecv = time.Now()
			}
			c.tr.add(c.id, "recv", tmp[:n], n)
			buf = append(buf, tmp[:n]...)
		}
		if err == io.EOF {
			c.eof = true
			c.tr.add(c.id, "eof", nil, 0)
			return buf, io.EOF
		}
		if err != nil {
			c.tr.add(c.id, "error", []byte(err.Error()), 0)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return buf, &opError{conn: c.id, op: fmt.Sprintf("no reply within %v (%d bytes came back)", wait, len(buf)), err: os.ErrDeadlineExceeded}
			}
			return buf, &opError{conn: c.id, op: "read", err: err}
		}
	}
	return buf, nil
}

// readToEOF reads until the server closes its side.
func (c *conn) readToEOF(limit int) ([]byte, error) {
	b, err := c.readUntil(nil, limit, c.d, func([]byte) bool { return false })
	if err == io.EOF {
		return b, nil
	}
	return b, err
}

func explain(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe (the server closed the connection)"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	}
	return err.Error()
}

// opError is a failed client operation, explained for a person and
// unwrappable for errors.Is.
type opError struct {
	conn int
	op   string
	err  error
}

func (e *opError) Error() string { return fmt.Sprintf("conn %d: %s: %s", e.conn, e.op, explain(e.err)) }
func (e *opError) Unwrap() error { return e.err }
