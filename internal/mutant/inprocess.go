package mutant

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/echoconform/echoconform/echo"
)

// New returns mutant name as an echo.Server that runs in this process, in
// the thread model, for conformance.InProcess. Some faults can only be seen
// there: a goroutine blocked forever costs an opaque process no descriptor
// and no thread, so only an in-process target shows it. Faults of the
// process itself (its signals, exit status, start-up) and the fork model
// need Command.
func New(name string, cfg echo.Config) (*Server, error) {
	m, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown mutant %q", name)
	}
	if err := m.check(ModelThread, cfg.Protocol); err != nil {
		return nil, err
	}
	k := m.Knobs
	if k.IgnoreTERM || k.ExitStatus != 0 || k.ExitAtOnce || k.ListenDelay != 0 || k.Backlog != 0 || k.HangOnExit {
		return nil, fmt.Errorf("mutant %s is a fault of the server process: run it with Command", name)
	}
	if cfg.MaxMsg == 0 {
		cfg.MaxMsg = echo.DefaultMaxMsg
	}
	return &Server{s: newServer(m, ModelThread, cfg), served: make(chan struct{})}, nil
}

// Server is a mutant in this process, with the life cycle of
// net/http.Server; Release ends what its fault leaked.
type Server struct {
	s *server

	mu      sync.Mutex
	ln      sockListener
	stopped bool
	served  chan struct{} // closed when Serve returns
	once    sync.Once
}

func (p *Server) Serve(l net.Listener) error {
	ln, ok := l.(sockListener)
	if !ok {
		return fmt.Errorf("mutant: a %T is not a TCP or Unix listener", l)
	}
	if ul, ok := ln.(*net.UnixListener); ok && p.s.k.KeepSocketFile {
		ul.SetUnlinkOnClose(false)
	}
	p.mu.Lock()
	if p.stopped || p.ln != nil {
		p.mu.Unlock()
		ln.Close()
		return echo.ErrServerClosed
	}
	p.ln = ln
	p.mu.Unlock()
	defer close(p.served)
	err := p.s.serve(ln)
	if p.s.k.ServeNil && err == echo.ErrServerClosed {
		return nil
	}
	return err
}

func (p *Server) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	ln := p.ln
	p.mu.Unlock()
	if ln == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		p.once.Do(func() { p.s.shutdown(ln) })
		<-p.served
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release ends what the fault leaked and Shutdown left behind on purpose
// (goroutines and threads blocked forever, descriptors kept open), so that
// a test process that checked the mutant ends clean.
func (p *Server) Release() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	select {
	case <-p.s.never:
	default:
		close(p.s.never)
	}
	for _, x := range p.s.leaked {
		if c, ok := x.(io.Closer); ok {
			c.Close()
		}
	}
	p.s.leaked = nil
}
