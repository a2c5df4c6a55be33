// Package handler holds the connection handler of the reference servers
// that serve connections in their own process: it speaks an echo.Config on
// a net.Conn with internal/serveconn. (The forking reference's children
// call serveconn directly, without net: see internal/forkchild.)
package handler

import (
	"net"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/serveconn"
)

// ServeConn speaks cfg on c as a connection handled by process pid, whose
// parent is ppid, and closes c.
func ServeConn(c net.Conn, cfg echo.Config, pid, ppid int) error {
	defer c.Close()
	sc, ok := c.(serveconn.Conn)
	if !ok {
		sc = noCloseWrite{c} // a net.Conn that cannot half-close
	}
	prefix := cfg.Prefix.Render(pid, ppid)
	cfg = cfg.WithDefaults()
	switch cfg.Protocol {
	case echo.Oneshot:
		return serveconn.Oneshot(sc, prefix, cfg.MaxMsg, cfg.Quiet)
	case echo.Line:
		return serveconn.Line(sc, prefix, cfg.MaxLine)
	}
	return serveconn.Stream(sc, prefix)
}

type noCloseWrite struct{ net.Conn }

func (noCloseWrite) CloseWrite() error { return nil }
