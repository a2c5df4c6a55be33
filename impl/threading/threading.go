// Package threading is the reference echo server of the thread model
// (Python's socketserver.ThreadingMixIn): every connection is served
// concurrently inside the server's own process.
package threading

import (
	"context"
	"net"
	"os"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/handler"
	"github.com/echoconform/echoconform/impl/internal/lifecycle"
)

// Server serves cfg with one goroutine per connection. It satisfies
// echo.Server.
type Server struct {
	cfg echo.Config
	lc  lifecycle.Server
}

var _ echo.Server = (*Server)(nil)

// New returns a server that speaks cfg.
func New(cfg echo.Config) *Server { return &Server{cfg: cfg} }

// Serve accepts connections on ln until Shutdown or Close; it returns
// echo.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	pid, ppid := os.Getpid(), os.Getppid()
	return s.lc.Serve(ln, func(c net.Conn) {
		if !s.lc.Go(func() { c.Close() }, func() { _ = handler.ServeConn(c, s.cfg, pid, ppid) }) {
			c.Close()
		}
	})
}

// Shutdown stops accepting, waits for in-flight connections, and closes them
// when ctx ends first (returning ctx.Err()). No goroutine of the server
// remains when it returns.
func (s *Server) Shutdown(ctx context.Context) error { return s.lc.Shutdown(ctx) }

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return s.lc.Close() }
