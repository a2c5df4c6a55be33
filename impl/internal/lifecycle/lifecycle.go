// Package lifecycle is the part of a server's life both references share:
// the accept loop, the bound on in-flight connections, and Shutdown/Close
// with the semantics of net/http.Server.
package lifecycle

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
)

// Server tracks listeners and in-flight work. The zero value is ready to use
// and admits any number of connections at once.
type Server struct {
	// MaxActive bounds the in-flight connections; at the bound the accept
	// loop waits (connections queue in the listen backlog, none is refused).
	MaxActive int

	once    sync.Once
	mu      sync.Mutex
	closed  bool
	closing chan struct{} // closed when shutdown starts
	lns     map[net.Listener]struct{}
	active  map[int]func() // id → force stop
	nextID  int
	serving sync.WaitGroup // Serve loops
	work    sync.WaitGroup // in-flight connections
	slots   chan struct{}
}

func (s *Server) init() {
	s.once.Do(func() {
		s.closing = make(chan struct{})
		s.lns = map[net.Listener]struct{}{}
		s.active = map[int]func(){}
		if s.MaxActive > 0 {
			s.slots = make(chan struct{}, s.MaxActive)
		}
	})
}

// Serve accepts on ln and hands each connection to handle, which must start
// the connection's work with Go and return. It returns echo.ErrServerClosed
// after Shutdown or Close.
func (s *Server) Serve(ln net.Listener, handle func(net.Conn)) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return echo.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	var backoff time.Duration
	for {
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
			case <-s.closing:
				return echo.ErrServerClosed
			}
		}
		c, err := ln.Accept()
		if err != nil {
			s.release()
			if s.isClosed() {
				return echo.ErrServerClosed
			}
			if !temporary(err) {
				return err
			}
			// Out of descriptors or a connection aborted before accept: back
			// off as net/http does, instead of spinning or dying.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-s.closing:
				return echo.ErrServerClosed
			}
			continue
		}
		backoff = 0
		handle(c)
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) release() {
	if s.slots != nil {
		<-s.slots
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Go runs one connection's work in a goroutine; stop must make run return
// soon (close the connection, kill the child). It reports false, running
// nothing, once the server is shutting down. Every connection handed to
// handle by Serve must end in exactly one call of Go.
func (s *Server) Go(stop func(), run func()) bool {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.release()
		return false
	}
	id := s.nextID
	s.nextID++
	s.active[id] = stop
	s.work.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.work.Done()
		defer s.release()
		run()
		s.mu.Lock()
		delete(s.active, id)
		s.mu.Unlock()
	}()
	return true
}

// Shutdown closes the listeners at once and waits for in-flight connections
// to finish. When ctx ends first it stops them, waits until their resources
// are released, and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	var lnErr error
	if !s.closed {
		s.closed = true
		close(s.closing)
		for ln := range s.lns {
			if err := ln.Close(); err != nil && lnErr == nil {
				lnErr = err
			}
		}
	}
	s.mu.Unlock()
	s.serving.Wait()

	done := make(chan struct{})
	go func() { s.work.Wait(); close(done) }()
	select {
	case <-done:
		return lnErr
	case <-ctx.Done():
		s.mu.Lock()
		for _, stop := range s.active {
			stop()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and connections are closed,
// and it returns when their resources are released.
func (s *Server) Close() error { return CloseNow(s.Shutdown) }

// CloseNow is a Close made of a Shutdown: the shutdown with a context
// already ended, which closes everything at once; the context's error is
// not the caller's.
func CloseNow(shutdown func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := shutdown(ctx); err != context.Canceled {
		return err
	}
	return nil
}
