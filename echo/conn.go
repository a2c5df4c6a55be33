package echo

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// lingerLimit bounds what a oneshot server reads and discards after its reply,
// so that closing does not reset the connection (and destroy the reply in
// the client's receive queue) while a client is still sending.
const lingerLimit = 1 << 20

// ServeConn speaks cfg on c as a connection handled by process pid, whose
// parent is ppid, and closes c. It is the handler both reference servers use.
func ServeConn(c net.Conn, cfg Config, pid, ppid int) error {
	defer c.Close()
	prefix := cfg.Prefix.Render(pid, ppid)
	if cfg.Protocol == Oneshot {
		return serveOneshot(c, cfg, prefix)
	}
	// The prefix goes out at once; the rest is io.Copy, which splices
	// socket to socket without copying through user space (SPEC.md STREAM-1..4).
	if len(prefix) > 0 {
		if _, err := c.Write(prefix); err != nil {
			return err
		}
	}
	if _, err := io.Copy(c, c); err != nil {
		return err
	}
	return closeWrite(c)
}

// serveOneshot reads one message (until EOF, MaxMsg bytes, or a quiet
// period after the last bytes), replies with prefix+message and closes
// (SPEC.md ONESHOT-1..5).
func serveOneshot(c net.Conn, cfg Config, prefix []byte) error {
	msg := make([]byte, len(prefix)+cfg.maxMsg())
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
		if err := c.SetReadDeadline(time.Now().Add(cfg.quiet())); err != nil {
			return err
		}
	}
	if _, err := c.Write(msg[:n]); err != nil {
		return err
	}
	if err := closeWrite(c); err != nil {
		return err
	}
	if !eof {
		// Lingering close: a client still sending past MaxMsg would get a
		// reset, and a reset can discard the reply before it is read.
		_ = c.SetReadDeadline(time.Now().Add(cfg.quiet()))
		_, _ = io.CopyN(io.Discard, c, lingerLimit)
	}
	return nil
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
