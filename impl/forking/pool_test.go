package forking_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/internal/proc"
)

// envServe makes the test binary a forking server that prints its address
// (TestSparesDieWithServer); TestMain calls serveForever.
const envServe = "FORKING_TEST_SERVE"

func serveForever() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(2)
	}
	fmt.Println(ln.Addr())
	srv := forking.New(echo.Config{Prefix: impltest.Prefix})
	// The spares stay until the server is killed: with the default 500 ms
	// after the last connection, a loaded machine (race-instrumented
	// children take long to start) could end them before the test sees
	// them, and TestSparesDieWithServer would wait for spares that came
	// and went.
	srv.SpareTimeout = impltest.Timeout
	_ = srv.Serve(ln)
	os.Exit(1)
}

// withPool is the forking reference with echochild children, configured
// by f.
func withPool(f func(s *forking.Server)) impltest.Model {
	return impltest.Model{Fork: true, New: func(cfg echo.Config) impltest.Server {
		s := forking.New(cfg)
		s.Child = echochild
		f(s)
		return s
	}}
}

// TestSpares tests that the server keeps spare children while connections
// arrive, serves from them, and ends them once connections stop: at rest it
// has no children.
func TestSpares(t *testing.T) {
	impltest.VerifyNone(t)
	require.Empty(t, impltest.Children(t))
	// Spares live SpareTimeout after the last connection: long enough
	// for three to start on a loaded machine.
	const spareTimeout = time.Second
	m := withPool(func(s *forking.Server) { s.Spare = 3; s.SpareTimeout = spareTimeout })
	r := impltest.Start(t, m, echo.Config{Prefix: impltest.Prefix})
	require.Empty(t, impltest.Children(t), "no child before the first connection")

	c := r.Dial(t)
	v := impltest.ExpectReply(t, c, impltest.Prefix, []byte("first"))
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return len(kids) == 4, fmt.Sprintf("children %v: want the busy one and 3 spares", kids)
	})
	impltest.ExpectEOF(t, c)
	require.NoError(t, c.Close())
	impltest.Eventually(t, spareTimeout+impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return len(kids) == 0, fmt.Sprintf("children %v remain %v after the last connection", kids, spareTimeout+impltest.D)
	})
	_, err := proc.Read(v.PID)
	require.Error(t, err, "the child of a closed connection remains")
}

// TestMaxChildren tests that MaxChildren bounds every child, spares
// included, and that a connection past the bound waits in the backlog
// until a child exits.
func TestMaxChildren(t *testing.T) {
	impltest.VerifyNone(t)
	const max = 3
	m := withPool(func(s *forking.Server) { s.MaxChildren = max; s.Spare = 5 })
	r := impltest.Start(t, m, echo.Config{Prefix: impltest.Prefix})
	var conns []impltest.Conn
	for i := range max {
		c := r.Dial(t)
		impltest.ExpectReply(t, c, impltest.Prefix, fmt.Appendf(nil, "connection %d", i))
		conns = append(conns, c)
		require.LessOrEqual(t, len(impltest.Children(t)), max)
	}
	require.Len(t, impltest.Children(t), max)

	waiting := r.Dial(t)
	require.NoError(t, waiting.SetDeadline(time.Now().Add(300*time.Millisecond)))
	_, err := waiting.Write([]byte("past the bound"))
	require.NoError(t, err)
	_, err = waiting.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "a connection past MaxChildren was served")
	require.LessOrEqual(t, len(impltest.Children(t)), max)

	// Once a child exits, the waiting connection gets one.
	impltest.ExpectEOF(t, conns[0])
	require.NoError(t, conns[0].Close())
	require.NoError(t, waiting.CloseWrite())
	v, rest := impltest.SplitReply(t, impltest.Prefix, impltest.ReadToEOF(t, waiting, impltest.D))
	m.CheckValues(t, v)
	require.Equal(t, "past the bound", string(rest))
	for _, c := range conns[1:] {
		impltest.ExpectEOF(t, c)
	}
}

// TestNoSpares tests the server with Spare < 0: a child is started for
// each connection once it is accepted.
func TestNoSpares(t *testing.T) {
	impltest.VerifyNone(t)
	m := withPool(func(s *forking.Server) { s.Spare = -1 })
	r := impltest.Start(t, m, echo.Config{Prefix: impltest.Prefix})
	for i := range 3 {
		c := r.Dial(t)
		m.CheckValues(t, impltest.ExpectReply(t, c, impltest.Prefix, fmt.Appendf(nil, "no spare %d", i)))
		require.Len(t, impltest.Children(t), 1, "one child: the connection's")
		impltest.ExpectEOF(t, c)
		require.NoError(t, c.Close())
		impltest.Eventually(t, impltest.D, func() (bool, string) {
			kids := impltest.Children(t)
			return len(kids) == 0, fmt.Sprintf("children %v remain", kids)
		})
	}
}

// TestShutdownEndsSpares tests that Shutdown ends the spares at once while
// it waits for the busy children, and reaps them all.
func TestShutdownEndsSpares(t *testing.T) {
	impltest.VerifyNone(t)
	m := withPool(func(s *forking.Server) { s.Spare = 4; s.SpareTimeout = time.Hour })
	r := impltest.Start(t, m, echo.Config{Prefix: impltest.Prefix})
	c := r.Dial(t)
	busy := impltest.ExpectReply(t, c, impltest.Prefix, []byte("in flight")).PID
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return len(kids) == 5, fmt.Sprintf("children %v: want 1 busy and 4 spares", kids)
	})
	ctx, cancel := context.WithTimeout(context.Background(), impltest.Timeout)
	defer cancel()
	shut := r.Shutdown(ctx)
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return slices.Equal(kids, []int{busy}), fmt.Sprintf("children %v: want only the busy %d", kids, busy)
	})
	impltest.ExpectEcho(t, c, []byte("still served"))
	impltest.ExpectEOF(t, c)
	require.NoError(t, <-shut)
	require.Empty(t, impltest.Children(t))
}

// TestSparesDieWithServer tests that the spares of a server that is killed
// do not outlive it.
func TestSparesDieWithServer(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServe+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)

	c, err := net.DialTimeout("tcp", strings.TrimSpace(addr), impltest.D)
	require.NoError(t, err)
	defer c.Close()
	tc := c.(*net.TCPConn)
	impltest.ExpectReply(t, tc, impltest.Prefix, []byte("warm up"))
	var spares []int
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		spares, _ = proc.Children(cmd.Process.Pid)
		return len(spares) >= 2, fmt.Sprintf("children of the server: %v", spares)
	})

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		proc.ReapZombies(spares...) // if they came to this process
		for _, pid := range spares {
			if info, err := proc.Read(pid); err == nil && info.State != "Z" {
				return false, fmt.Sprintf("child %d (%s) outlives its killed server", pid, info.State)
			} else if err != nil && !errors.Is(err, os.ErrNotExist) {
				return false, err.Error()
			}
		}
		return true, ""
	})
}

// TestDrainEndsSpareStartedDuringIt tests that a spare whose start was
// under way when Shutdown began ends too: drain ended the spares there were,
// and the one started after it must not wait, idle, for the in-flight
// connection to close. (A spawner that checked only for a closed pool left
// it idle until Shutdown's wait ended.)
func TestDrainEndsSpareStartedDuringIt(t *testing.T) {
	impltest.VerifyNone(t)
	m := withPool(func(s *forking.Server) { s.Spare = 1; s.SpareTimeout = time.Hour })
	r := impltest.Start(t, m, echo.Config{Prefix: impltest.Prefix})
	// A first connection makes the pool keep a spare.
	c1 := r.Dial(t)
	first := impltest.ExpectReply(t, c1, impltest.Prefix, []byte("first")).PID
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return len(kids) == 2, fmt.Sprintf("children %v: want the first's and a spare", kids)
	})
	release, _ := forking.HoldSpawns()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	// The second connection takes the spare; the spawner starting the next
	// one is held.
	c2 := r.Dial(t)
	busy := impltest.ExpectReply(t, c2, impltest.Prefix, []byte("in flight")).PID
	require.NotEqual(t, first, busy)
	require.NoError(t, c1.Close())
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return slices.Equal(kids, []int{busy}), fmt.Sprintf("children %v: want only the busy %d", kids, busy)
	})
	// Shutdown drains, then stops listening: once new connections are
	// refused, drain has run. Then the held spare starts.
	ctx, cancel := context.WithTimeout(context.Background(), impltest.Timeout)
	defer cancel()
	shut := r.Shutdown(ctx)
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		return r.Refused(t), "the listener still accepts"
	})
	released = true
	release()
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return slices.Equal(kids, []int{busy}), fmt.Sprintf("children %v: want only the busy %d", kids, busy)
	})
	require.NoError(t, c2.Close())
	require.NoError(t, <-shut)
}

// TestSilentConnectionGetsStartingSpare tests that a connection that has
// sent nothing yet waits for a spare whose start is under way, when no
// busy child holds that slot: it is not at the bound, and must not wait
// for data first. (The pool counted a starting spare as a slot taken, so
// such a client, waiting for its prefix before it spoke, waited for ever.)
func TestSilentConnectionGetsStartingSpare(t *testing.T) {
	impltest.VerifyNone(t)
	var srv *forking.Server
	m := withPool(func(s *forking.Server) {
		s.MaxChildren, s.Spare, s.SpareTimeout = 1, 1, time.Hour
		srv = s
	})
	r := impltest.Start(t, m, echo.Config{Prefix: impltest.Prefix})
	// A first connection makes the pool keep a spare; its child holds the
	// one slot until it ends.
	c1 := r.Dial(t)
	impltest.ExpectReply(t, c1, impltest.Prefix, []byte("first"))
	release, held := forking.HoldSpawns()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	require.NoError(t, c1.Close())
	// The first child is reaped, and the spare that takes its slot is
	// being started, held.
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		kids := impltest.Children(t)
		return len(kids) == 0 && held() == 1, fmt.Sprintf("children %v, %d starts held: want none and one", kids, held())
	})
	silent := r.Dial(t)
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		return srv.Waiting() == 1, fmt.Sprintf("%d connections wait for a child: want the silent one", srv.Waiting())
	})
	released = true
	release()
	m.CheckValues(t, impltest.ExpectPrefix(t, silent, impltest.Prefix))
	require.NoError(t, silent.Close())
}
