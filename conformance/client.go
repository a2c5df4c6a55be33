package conformance

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sockConn is a client connection of any transport (*net.TCPConn,
// *net.UnixConn).
type sockConn interface {
	net.Conn
	CloseWrite() error
	SyscallConn() (syscall.RawConn, error)
}

// conn is one client connection, with a deadline on every operation.
type conn struct {
	c   sockConn
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
	nc, err := in.ep.dial(d, ck.dl)
	if err != nil {
		ck.tr.addError(id, err)
		return nil, fmt.Errorf("conn %d: connect to %s: %v", id, in.ep, err)
	}
	c := &conn{c: nc.(sockConn), id: id, d: ck.dl.D, dl: ck.dl, tr: &ck.tr}
	ck.tr.add(id, "connect", nil, 0)
	ck.mu.Lock()
	ck.conns = append(ck.conns, c)
	ck.mu.Unlock()
	return c, nil
}

func (c *conn) write(p []byte) error {
	// Large writes get time in proportion to their size.
	_ = c.c.SetWriteDeadline(time.Now().Add(c.d - c.dl.D + c.dl.transfer(len(p))))
	n, err := c.c.Write(p)
	c.tr.add(c.id, "send", p[:n], n)
	if err != nil {
		c.tr.addError(c.id, err)
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

// abort resets the connection: over TCP SO_LINGER 0 makes close send RST;
// a Unix socket's close resets its peer when it leaves data unread.
func (c *conn) abort() {
	c.tr.add(c.id, "reset", nil, 0)
	if l, ok := c.c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
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
			c.tr.addError(c.id, err)
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
