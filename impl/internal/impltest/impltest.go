// Package impltest holds what the tests of the reference servers share:
// starting a server on a loopback listener, dialing it, exchanging data
// with deadlines, and the checks that both models must pass. It is imported
// only by tests.
package impltest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

// The tests of the references time nothing: how fast a server answers on
// a busy machine is no verdict (SPEC.md's 2-second deadline is the
// conformance harness's to apply). Their deadlines are hang guards, so
// that a server that never answers fails a test instead of hanging it;
// they are generous, and a test that runs into one says so.
const (
	// D bounds each wait for a reply, an EOF, or a condition to hold.
	D = 30 * time.Second
	// Timeout bounds the longer waits: bulk transfers, a graceful
	// Shutdown, a server working off a storm.
	Timeout = 2 * time.Minute
	// tick is the polling interval of Eventually.
	tick = 5 * time.Millisecond
)

// Prefix is the template the tests use unless they test the template itself.
var Prefix = echo.MustParseTemplate("{pid}/{ppid}: ")

// Server is what both reference servers are.
type Server interface {
	echo.Server
	Close() error
}

// Model describes one reference server to the shared tests.
type Model struct {
	// Fork is true when each connection is served by a child process of
	// the test process, false when it is served inside it.
	Fork bool
	New  func(echo.Config) Server
	// Unix serves on a Unix-domain stream socket in a new temporary
	// directory instead of 127.0.0.1 (issue 14).
	Unix bool
}

// OverUnix is m serving on a Unix-domain stream socket.
func (m Model) OverUnix() Model {
	m.Unix = true
	return m
}

// Conn is a client's connection to a server under test: a *net.TCPConn
// or a *net.UnixConn, both of which half-close.
type Conn interface {
	net.Conn
	CloseWrite() error
}

// CheckValues checks the {pid} and {ppid} a reply carried against the
// model (SPEC.md PREFIX-2, PREFIX-3).
func (m Model) CheckValues(t testing.TB, v echo.Values) {
	t.Helper()
	if m.Fork {
		require.NotEqual(t, os.Getpid(), v.PID, "fork: {pid} is the server's own PID")
		require.Positive(t, v.PID, "fork: {pid}")
		require.Equal(t, os.Getpid(), v.PPID, "fork: {ppid} is not the server's PID")
		return
	}
	require.Equal(t, os.Getpid(), v.PID, "thread: {pid} is not the server's PID")
	require.Equal(t, os.Getppid(), v.PPID, "thread: {ppid} is not the server's parent")
}

// VerifyNone checks, after every other cleanup of t has run, that no
// goroutine is left. Call it first in a test that is not parallel.
func VerifyNone(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// Running is a server serving a loopback listener or a Unix-domain
// socket.
type Running struct {
	Server  Server
	Network string // "tcp" or "unix"
	Addr    string // 127.0.0.1:port, or the socket's path
	served  chan error
	done    bool
	err     error
}

// Start serves cfg with a new server of model m on 127.0.0.1 (or a Unix
// socket, when m.Unix) and registers a cleanup that shuts it down and
// checks that Serve returned echo.ErrServerClosed (and that the socket
// file is gone). Dial before Start's cleanup runs: connections
// registered later are closed first.
func Start(t testing.TB, m Model, cfg echo.Config) *Running {
	t.Helper()
	return StartWith(t, m, cfg, nil)
}

// StartWith is Start with the listener wrapped by wrap, when not nil.
func StartWith(t testing.TB, m Model, cfg echo.Config, wrap func(net.Listener) net.Listener) *Running {
	t.Helper()
	network, addr := "tcp", "127.0.0.1:0"
	if m.Unix {
		network, addr = "unix", SocketPath(t)
	}
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	addr = ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	r := &Running{Server: m.New(cfg), Network: network, Addr: addr, served: make(chan error, 1)}
	go func() { r.served <- r.Server.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		select {
		case err := <-r.Shutdown(ctx):
			assert.NoError(t, err, "Shutdown at cleanup")
		case <-time.After(Timeout + D):
			assert.Fail(t, "hang guard: Shutdown at cleanup did not return after its context ended")
		}
		assert.ErrorIs(t, r.ServeErr(t), echo.ErrServerClosed, "Serve's result")
		if r.Network == "unix" {
			_, err := os.Lstat(r.Addr)
			assert.ErrorIs(t, err, fs.ErrNotExist, "the socket file after Shutdown")
		}
	})
	return r
}

// SocketPath returns the path of a socket in a new temporary directory,
// removed by a cleanup. The directory is made under os.TempDir, not
// t.TempDir: a socket's path must fit sun_path's 108 bytes, and a test's
// name can be longer than that alone.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ec")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// RequireSocketGone fails unless the server's socket file is gone (after
// Shutdown or Close). It does nothing for a server on TCP.
func (r *Running) RequireSocketGone(t testing.TB) {
	t.Helper()
	if r.Network != "unix" {
		return
	}
	_, err := os.Lstat(r.Addr)
	require.ErrorIs(t, err, fs.ErrNotExist, "the socket file %s after the server stopped", r.Addr)
}

// Shutdown calls the server's Shutdown in a goroutine and delivers its
// result, so that a test can bound the wait.
func (r *Running) Shutdown(ctx context.Context) <-chan error {
	shut := make(chan error, 1)
	go func() { shut <- r.Server.Shutdown(ctx) }()
	return shut
}

// ServeErr waits (at most Timeout) for Serve to return and returns its
// result. Call it only after shutdown has started.
func (r *Running) ServeErr(t testing.TB) error {
	t.Helper()
	if !r.done {
		select {
		case r.err = <-r.served:
		case <-time.After(Timeout):
			r.err = errors.New("impltest: hang guard: Serve did not return within Timeout")
		}
		r.done = true
	}
	return r.err
}

// Dial connects to the server, gives the connection a deadline of Timeout
// and registers its Close as a cleanup.
func (r *Running) Dial(t testing.TB) Conn {
	t.Helper()
	c, err := net.DialTimeout(r.Network, r.Addr, D)
	require.NoError(t, err, "dial %s %s", r.Network, r.Addr)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(Timeout)))
	return c.(Conn)
}

// DialTCP is Dial for the tests that need TCP itself (TCP_INFO, SO_LINGER,
// ports): it fails the test when the server is not on TCP.
func (r *Running) DialTCP(t testing.TB) *net.TCPConn {
	t.Helper()
	require.Equal(t, "tcp", r.Network, "a TCP-only test")
	return r.Dial(t).(*net.TCPConn)
}

// Refused reports whether a new connection to the server is refused. A
// connection that is accepted is closed at once; one that the listener
// resets as it closes counts as not refused yet. On a Unix socket, a path
// with no file is refused too.
func (r *Running) Refused(t testing.TB) bool {
	t.Helper()
	c, err := net.DialTimeout(r.Network, r.Addr, D)
	if err == nil {
		_ = c.Close()
		return false
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return false // queued in the backlog of a listener being closed
	}
	if r.Network == "unix" && errors.Is(err, syscall.ENOENT) {
		return true // the socket file is gone
	}
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "dial %s after shutdown", r.Addr)
	return true
}

// Eventually polls cond every few milliseconds until it reports true, and
// fails the test with cond's last reason when that takes longer than within.
func Eventually(t testing.TB, within time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			require.Failf(t, "condition not met within the hang guard", "after %v (a generous bound, not a timing verdict): %s", within, why)
		}
		<-ticker.C
	}
}

// FDs returns the test process's open descriptors after two garbage
// collections, which release the splice pipes io.Copy keeps in a
// sync.Pool. The pipes are closed by cleanups that run asynchronously after
// the collection, so one reading may still count some of them: use
// SettledFDs for a baseline, and poll a comparison with Eventually.
func FDs(t testing.TB) int {
	t.Helper()
	runtime.GC()
	runtime.GC()
	info, err := proc.Read(os.Getpid())
	require.NoError(t, err)
	return info.FDs
}

// SettledFDs returns FDs once three readings in a row agree.
func SettledFDs(t testing.TB) int {
	t.Helper()
	last, same := -1, 0
	Eventually(t, D, func() (bool, string) {
		n := FDs(t)
		if n == last {
			same++
		} else {
			last, same = n, 1
		}
		return same == 3, fmt.Sprintf("descriptor count does not settle: last %d", n)
	})
	return last
}

// Children returns the live and zombie children of the test process.
func Children(t testing.TB) []int {
	t.Helper()
	kids, err := proc.Children(os.Getpid())
	require.NoError(t, err)
	return kids
}
