// Package testserver runs servers for the project's tests and benchmarks:
// every one ends, with its connections, when the test does.
package testserver

import (
	"errors"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
)

// Handle serves every connection on 127.0.0.1 with handle, each on a
// goroutine of its own, until tb ends; then it closes the listener and
// every open connection and waits for the handlers. It returns the
// address.
func Handle(tb testing.TB, handle func(c *net.TCPConn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c.(*net.TCPConn))
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Closer is an echo.Server that can also be closed at once.
type Closer interface {
	echo.Server
	Close() error
}

// Serve runs srv on 127.0.0.1 until tb ends, then closes it and requires
// Serve to return ErrServerClosed. It returns the address.
func Serve(tb testing.TB, srv Closer) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		require.NoError(tb, srv.Close())
		require.ErrorIs(tb, <-served, echo.ErrServerClosed)
	})
	return ln.Addr().String()
}

// ServePORT runs srv on 127.0.0.1:$PORT until SIGTERM: the body of a test
// binary re-executed as a command target. It returns the exit status: 0
// after SIGTERM, 1 if Serve failed otherwise, 2 if it could not listen.
func ServePORT(srv Closer) int {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, echo.ErrServerClosed) {
		return 1
	}
	return 0
}
