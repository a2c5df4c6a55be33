package echo

import (
	"net"

	"github.com/echoconform/echoconform/internal/serveconn"
)

// ServeConn speaks cfg on c as a connection handled by process pid, whose
// parent is ppid, and closes c. It is the handler both reference servers use.
func ServeConn(c net.Conn, cfg Config, pid, ppid int) error {
	defer c.Close()
	sc, ok := c.(serveconn.Conn)
	if !ok {
		sc = noCloseWrite{c} // a net.Conn that cannot half-close
	}
	prefix := cfg.Prefix.Render(pid, ppid)
	if cfg.Protocol == Oneshot {
		return serveconn.Oneshot(sc, prefix, cfg.maxMsg(), cfg.quiet())
	}
	return serveconn.Stream(sc, prefix)
}

type noCloseWrite struct{ net.Conn }

func (noCloseWrite) CloseWrite() error { return nil }
