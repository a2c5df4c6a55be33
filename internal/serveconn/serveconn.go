// Package serveconn speaks the echo protocols of SPEC.md on one
// connection: the handler both reference servers share (through
// impl/internal/handler.ServeConn) and the forking reference's children run.
//
// It imports no net on purpose. A program built of it and the standard
// library's os alone, as cmd/echochild is, links without cgo even where cgo
// is enabled: a static binary, which starts without the dynamic loader and
// libc and so in about half the time (impl/forking starts one per
// connection).
package serveconn

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"
)

// Conn is what a handler needs of a connection. *net.TCPConn has it all.
type Conn interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	// CloseWrite sends FIN: the client reads EOF after the echo.
	CloseWrite() error
}

// lingerLimit bounds what a oneshot server reads and discards after its reply,
// so that closing does not reset the connection (and destroy the reply in
// the client's receive queue) while a client is still sending.
const lingerLimit = 1 << 20

// Stream writes prefix, echoes every byte until the client half-closes,
// then half-closes in turn (SPEC.md STREAM-1..4). The caller closes c.
func Stream(c Conn, prefix []byte) error {
	// The prefix goes out at once; the rest is io.Copy, which splices
	// socket to socket without copying through user space when c is a
	// *net.TCPConn.
	if len(prefix) > 0 {
		if _, err := c.Write(prefix); err != nil {
			return err
		}
	}
	if _, err := io.Copy(c, c); err != nil {
		return err
	}
	return c.CloseWrite()
}

// Oneshot reads one message (until EOF, maxMsg bytes, or quiet after the
// last bytes), replies with prefix+message and half-closes (SPEC.md
// ONESHOT-1..5). The caller closes c.
func Oneshot(c Conn, prefix []byte, maxMsg int, quiet time.Duration) error {
	msg := make([]byte, len(prefix)+maxMsg)
	n := copy(msg, prefix)
	eof := false
	for n < len(msg) {
		k, err := c.Read(msg[n:])
		n += k
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != io.EOF {
				return err
			}
			eof = true
			break
		}
		// The first read waits as long as the client needs; after that
		// the message ends at the first quiet period.
		if err := c.SetReadDeadline(time.Now().Add(quiet)); err != nil {
			return err
		}
	}
	if _, err := c.Write(msg[:n]); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	if !eof {
		// Lingering close: a client still sending past maxMsg would get a
		// reset, and a reset can discard the reply before it is read.
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		_, _ = io.CopyN(io.Discard, c, lingerLimit)
	}
	return nil
}

// Line writes prefix, then echoes the client's data a line at a time: each
// line goes back whole, in one write, once its newline arrives, and the
// lines one read brings go back together (SPEC.md LINE-1..6). Memory stays
// bounded by maxLine: a longer line goes back in pieces of maxLine bytes.
// At EOF a final line without a newline goes back, then the half-close.
// The caller closes c.
func Line(c Conn, prefix []byte, maxLine int) error {
	if len(prefix) > 0 {
		if _, err := c.Write(prefix); err != nil {
			return err
		}
	}
	buf := make([]byte, maxLine)
	n := 0 // bytes of buf holding a line not yet complete
	for {
		k, err := c.Read(buf[n:])
		if k > 0 {
			end := n + k // complete lines end at the last newline
			if i := bytes.LastIndexByte(buf[n:end], '\n'); i >= 0 {
				end = n + i + 1
			} else if end < len(buf) {
				end = 0
			}
			if end > 0 {
				if _, err := c.Write(buf[:end]); err != nil {
					return err
				}
			}
			n = copy(buf, buf[end:n+k])
		}
		if err == io.EOF {
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return err
				}
			}
			return c.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}
