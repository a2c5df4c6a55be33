package eventloop_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/eventloop"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/internal/proc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The event model serves every connection inside the test process, as the
// thread model does: {pid} is the server's, and no child is started.
var model = impltest.Model{
	New: func(cfg echo.Config) impltest.Server { return eventloop.New(cfg) },
}

func TestStreamExact(t *testing.T)      { impltest.StreamExact(t, model) }
func TestHalfClose(t *testing.T)        { impltest.HalfClose(t, model) }
func TestInteractive(t *testing.T)      { impltest.Interactive(t, model) }
func TestOneshot(t *testing.T)          { impltest.Oneshot(t, model) }
func TestLine(t *testing.T)             { impltest.Line(t, model) }
func TestPIDs(t *testing.T)             { impltest.PIDs(t, model) }
func TestConcurrent64(t *testing.T)     { impltest.Concurrent(t, model, 64) }
func TestShutdownGraceful(t *testing.T) { impltest.ShutdownGraceful(t, model) }
func TestShutdownExpired(t *testing.T)  { impltest.ShutdownExpired(t, model) }
func TestLeaks200(t *testing.T)         { impltest.Leaks(t, model, 200) }

// The tests of what defines an event loop.

var protocols = []echo.Protocol{echo.Stream, echo.Line, echo.Oneshot}

// threads is the test process's thread count.
func threads(t testing.TB) int {
	t.Helper()
	info, err := proc.Read(os.Getpid())
	require.NoError(t, err)
	return info.Threads
}

// TestThreadsFixed opens 200 connections, all open at once and each
// served, and checks that the process runs no more threads than with none:
// one thread serves them all. The slack is the Go runtime's own (a thread
// for a goroutine in a system call, the garbage collector's); a thread per
// connection would add 200.
func TestThreadsFixed(t *testing.T) {
	const n, slack = 200, 4
	impltest.VerifyNone(t)
	r := impltest.Start(t, model, echo.Config{Protocol: echo.Stream, Prefix: impltest.Prefix})
	impltest.ServedNow(t, r, model)
	base := threads(t)

	conns := make([]impltest.Conn, n)
	for i := range conns {
		conns[i] = r.Dial(t)
		model.CheckValues(t, impltest.ExpectReply(t, conns[i], impltest.Prefix, fmt.Appendf(nil, "connection %d", i)))
	}
	// Every connection busy at once: all written, then all read.
	msg := impltest.Pattern(16<<10, 1)
	for _, c := range conns {
		require.NoError(t, c.SetDeadline(time.Now().Add(impltest.D)))
		_, err := c.Write(msg)
		require.NoError(t, err)
	}
	for i, c := range conns {
		got := make([]byte, len(msg))
		_, err := io.ReadFull(c, got)
		require.NoError(t, err, "connection %d", i)
		impltest.RequireBytes(t, msg, got, "echo")
	}
	open := threads(t)
	t.Logf("threads: %d serving 1 connection, %d serving %d at once", base, open, n)
	require.LessOrEqual(t, open, base+slack, "threads grew with the connections: %d with 1, %d with %d", base, open, n)
	for _, c := range conns {
		impltest.ExpectEOF(t, c)
	}
}

// serverSide is the server's end of c, for proc.ReceiveQueue.
func serverSide(c *net.TCPConn) (local, remote *net.TCPAddr) {
	return c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
}

// hogBytes is what a client writes that never reads: enough that the
// server, once it stops reading, must fill its receive buffer and offer a
// zero window. 8 MiB is not: here the loopback socket buffers of both ends
// took up to 7.5 MiB before a write blocked, and a receive buffer
// autotunes up to net.ipv4.tcp_rmem's 32 MiB. The client's write returns
// when its connection closes.
const hogBytes = 64 << 20

// backedUp waits until the server has stopped reading c, whose echo it
// cannot send: its receive buffer is full and it offers c a zero window,
// and nothing moves between two readings. It returns the bytes the server
// then holds in its own memory: those it read from c less those it wrote
// to c (the prefix included). (Bytes waiting in its receive queue alone
// say nothing: they wait there a moment whenever a client writes faster
// than the server reads.)
func backedUp(t testing.TB, c *net.TCPConn) (held int64) {
	t.Helper()
	local, remote := serverSide(c)
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	prefix := int64(len(impltest.Prefix.Render(os.Getpid(), os.Getppid())))
	var last *unix.TCPInfo
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		var info *unix.TCPInfo
		var ierr error
		if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
			return false, err.Error()
		}
		if ierr != nil {
			return false, ierr.Error()
		}
		rq, _, found, err := proc.ReceiveQueue(local, remote)
		if err != nil || !found {
			return false, fmt.Sprintf("the server's socket: found %v, %v", found, err)
		}
		q, _, err := proc.QueuesOf(local, remote)
		wq := q.Send
		if err != nil {
			return false, err.Error()
		}
		prev := last
		last = info
		if info.Snd_wnd != 0 || rq == 0 || prev == nil || prev.Bytes_acked != info.Bytes_acked || prev.Bytes_received != info.Bytes_received {
			return false, fmt.Sprintf("the server still reads what the client writes: it offers a window of %d bytes, %d wait in its receive queue", info.Snd_wnd, rq)
		}
		// Read: what the server's kernel acknowledged less what waits
		// unread. Written: what the client received and what the
		// server's kernel still holds to send.
		held = (int64(info.Bytes_acked) - int64(rq)) - (int64(info.Bytes_received) + int64(wq)) - prefix
		return true, ""
	})
	return held
}

// lines returns n bytes of lines (a newline every 100 bytes or so, some
// longer than max-line) ending in a newline.
func lines(n int, seed uint64) []byte {
	b := impltest.Pattern(n, seed)
	b[len(b)-1] = '\n'
	return b
}

// newConnServed checks that a new connection is served: an exchange of
// one line (a oneshot message ended by a half-close).
func newConnServed(t *testing.T, r *impltest.Running, p echo.Protocol) {
	t.Helper()
	c := r.Dial(t)
	msg := []byte("a new connection\n")
	if p == echo.Oneshot {
		require.NoError(t, c.SetDeadline(time.Now().Add(impltest.D)))
		_, err := c.Write(msg)
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		v, got := impltest.SplitReply(t, impltest.Prefix, impltest.ReadToEOF(t, c, impltest.D))
		model.CheckValues(t, v)
		require.Equal(t, string(msg), string(got))
	} else {
		model.CheckValues(t, impltest.ExpectReply(t, c, impltest.Prefix, msg))
		impltest.ExpectEOF(t, c)
	}
	require.NoError(t, c.Close())
}

// TestNonReaderDoesNotStall has a client write megabytes (hogBytes) and
// never read its echo. The server must stop reading it once its echo backs up (bounded
// memory) and serve everyone else meanwhile; when the client reads at
// last, it gets every byte.
func TestNonReaderDoesNotStall(t *testing.T) {
	for _, p := range []echo.Protocol{echo.Stream, echo.Line} {
		t.Run(p.String(), func(t *testing.T) {
			impltest.VerifyNone(t)
			r := impltest.Start(t, model, echo.Config{Protocol: p, Prefix: impltest.Prefix})
			hog := r.DialTCP(t)
			data := lines(hogBytes, 9)
			wrote := make(chan error, 1)
			go func() { _, err := hog.Write(data); wrote <- err }()
			defer func() { _ = hog.Close(); <-wrote }() // ends the writer whatever happens

			held := backedUp(t, hog)
			// The connection's buffer, and a little: the kernel's counts
			// are a few bytes off.
			bound := int64(64<<10 + 4096)
			if p == echo.Line {
				bound = echo.DefaultMaxLine + 4096
			}
			t.Logf("the server holds %d bytes of the hog's echo in its memory", held)
			require.LessOrEqual(t, held, bound, "the server buffers a client whose echo backs up without bound")
			// Everyone else is served meanwhile, an open connection and new ones.
			other := r.Dial(t)
			model.CheckValues(t, impltest.ExpectReply(t, other, impltest.Prefix, []byte("while the hog waits\n")))
			for i := range 5 {
				impltest.ExpectEcho(t, other, fmt.Appendf(nil, "echo %d\n", i))
				newConnServed(t, r, p)
			}
			impltest.ExpectEOF(t, other)

			// The hog reads at last: the server resumes it, every byte.
			prefix := impltest.Prefix.Render(os.Getpid(), os.Getppid())
			got := make([]byte, len(prefix)+len(data))
			require.NoError(t, hog.SetDeadline(time.Now().Add(impltest.Timeout)))
			_, err := io.ReadFull(hog, got)
			require.NoError(t, err)
			require.Equal(t, string(prefix), string(got[:len(prefix)]))
			impltest.RequireBytes(t, data, got[len(prefix):], "the hog's echo")
			require.NoError(t, <-wrote)
			wrote <- nil
			impltest.ExpectEOF(t, hog)
		})
	}
}

// settled waits until the test process has no more goroutines and the
// same descriptors as at base.
func settled(t testing.TB, goroutines, fds int) {
	t.Helper()
	impltest.Eventually(t, impltest.D, func() (bool, string) {
		if g := runtime.NumGoroutine(); g > goroutines {
			return false, fmt.Sprintf("%d goroutines, %d before", g, goroutines)
		}
		if n := impltest.FDs(t); n != fds {
			return false, fmt.Sprintf("%d descriptors, %d before", n, fds)
		}
		return true, ""
	})
}

// TestResetLeavesOthers has clients reset their connections at the worst
// moments (stream and line: with their echo backed up, so the server's
// next write fails; oneshot: mid-message, with the quiet timer armed,
// and while lingering) while a bystander is mid-exchange: the bystander
// finishes its exchange, new connections are served, and the server is
// back to its goroutines and descriptors.
func TestResetLeavesOthers(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			impltest.VerifyNone(t)
			// A long quiet period: the bystander's message ends with its
			// half-close, not with a pause of the test.
			r := impltest.Start(t, model, echo.Config{Protocol: p, Prefix: impltest.Prefix, Quiet: impltest.Timeout})
			newConnServed(t, r, p)
			goroutines, fds := runtime.NumGoroutine(), impltest.SettledFDs(t)

			bystander := r.Dial(t)
			if p == echo.Oneshot {
				require.NoError(t, bystander.SetDeadline(time.Now().Add(impltest.D)))
				_, err := bystander.Write([]byte("first half, "))
				require.NoError(t, err)
			} else {
				model.CheckValues(t, impltest.ExpectReply(t, bystander, impltest.Prefix, []byte("bystander\n")))
			}

			const k = 8
			for i := range k {
				c := r.DialTCP(t)
				require.NoError(t, c.SetDeadline(time.Now().Add(impltest.Timeout)))
				wrote := make(chan error, 1)
				switch {
				case p != echo.Oneshot:
					go func() { _, err := c.Write(lines(hogBytes, uint64(i))); wrote <- err }()
					backedUp(t, c)
				case i%2 == 0: // mid-message
					go func() { _, err := c.Write([]byte("half a message")); wrote <- err }()
					require.NoError(t, <-wrote)
					wrote <- nil
					impltest.Eventually(t, impltest.D, func() (bool, string) {
						local, remote := serverSide(c)
						q, acc, _, err := proc.ReceiveQueue(local, remote)
						return err == nil && acc && q == 0, "the server has not read the message yet"
					})
				default: // lingering: more than max-msg; the reply read
					msg := impltest.Pattern(256<<10, uint64(i))
					go func() { _, err := c.Write(msg); wrote <- err }()
					v, got := impltest.SplitReply(t, impltest.Prefix, impltest.ReadToEOF(t, c, impltest.D))
					model.CheckValues(t, v)
					impltest.RequireBytes(t, msg[:echo.DefaultMaxMsg], got, "reply")
				}
				require.NoError(t, c.SetLinger(0))
				require.NoError(t, c.Close()) // RST
				<-wrote
			}

			if p == echo.Oneshot {
				_, err := bystander.Write([]byte("second half"))
				require.NoError(t, err)
				require.NoError(t, bystander.CloseWrite())
				v, got := impltest.SplitReply(t, impltest.Prefix, impltest.ReadToEOF(t, bystander, impltest.D))
				model.CheckValues(t, v)
				require.Equal(t, "first half, second half", string(got))
			} else {
				impltest.ExpectEcho(t, bystander, []byte("still here\n"))
				impltest.ExpectEOF(t, bystander)
			}
			require.NoError(t, bystander.Close())
			newConnServed(t, r, p)
			settled(t, goroutines, fds)
		})
	}
}

// anonInodes counts the test process's epoll and eventfd descriptors (the
// Go runtime's poller has one of each).
func anonInodes(t testing.TB) (epolls, eventfds int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		switch link {
		case "anon_inode:[eventpoll]":
			epolls++
		case "anon_inode:[eventfd]":
			eventfds++
		}
	}
	return epolls, eventfds
}

// TestShutdownReleasesAll stops a server busy in every way (idle
// connections, one mid-echo, one whose echo backs up, one half-closed
// with its echo unread) with an expired context, and checks that nothing
// of it remains: no goroutine (goleak), no descriptor, neither its epoll
// nor its eventfd, for every protocol.
func TestShutdownReleasesAll(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			impltest.VerifyNone(t)
			fds0 := impltest.SettledFDs(t)
			ep0, ev0 := anonInodes(t)
			r := impltest.Start(t, model, echo.Config{Protocol: p, Prefix: impltest.Prefix, Quiet: impltest.Timeout})
			newConnServed(t, r, p)
			ep, ev := anonInodes(t)
			require.Equal(t, [2]int{ep0 + 1, ev0 + 1}, [2]int{ep, ev}, "epoll and eventfd descriptors while serving (the test must see the loop's)")

			for range 20 {
				r.Dial(t) // idle
			}
			mid := r.Dial(t)
			_, err := mid.Write([]byte("mid-echo, no newline"))
			require.NoError(t, err)
			hog := r.DialTCP(t)
			wrote := make(chan error, 1)
			go func() { _, err := hog.Write(lines(hogBytes, 3)); wrote <- err }()
			defer func() { _ = hog.Close(); <-wrote }()
			if p != echo.Oneshot {
				backedUp(t, hog)
			}
			half := r.Dial(t)
			_, err = half.Write(impltest.Pattern(1000, 4))
			require.NoError(t, err)
			require.NoError(t, half.CloseWrite())

			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			select {
			case err := <-r.Shutdown(ctx):
				require.ErrorIs(t, err, context.DeadlineExceeded)
			case <-time.After(impltest.D):
				require.FailNow(t, "hang guard: Shutdown with an expired context did not return within D")
			}
			require.ErrorIs(t, r.ServeErr(t), echo.ErrServerClosed)
			require.True(t, r.Refused(t), "the port is still open after Shutdown")
			ep, ev = anonInodes(t)
			require.Equal(t, [2]int{ep0, ev0}, [2]int{ep, ev}, "epoll and eventfd descriptors after Shutdown")
			_ = hog.Close()
			<-wrote
			wrote <- nil
			for _, c := range []impltest.Conn{mid, half} {
				require.NoError(t, c.Close())
			}
			// The clients registered with r.Dial close at the cleanup; the
			// server's side is what must be gone now: one descriptor per
			// client still open.
			impltest.Eventually(t, impltest.D, func() (bool, string) {
				n := impltest.FDs(t)
				want := fds0 + 20
				return n == want, fmt.Sprintf("%d descriptors after Shutdown, want %d (%d before Start and 20 idle clients)", n, want, fds0)
			})
		})
	}
}

// TestWrappedListener serves a listener that is not a *net.TCPListener:
// Serve accepts in a goroutine and hands connections to the loop.
func TestWrappedListener(t *testing.T) {
	impltest.VerifyNone(t)
	r := impltest.StartWith(t, model, echo.Config{Protocol: echo.Stream, Prefix: impltest.Prefix},
		func(ln net.Listener) net.Listener { return struct{ net.Listener }{ln} })
	conns := make([]impltest.Conn, 8)
	for i := range conns {
		conns[i] = r.Dial(t)
		model.CheckValues(t, impltest.ExpectReply(t, conns[i], impltest.Prefix, fmt.Appendf(nil, "connection %d", i)))
	}
	data := impltest.Pattern(1<<20, 5)
	impltest.RequireBytes(t, data, impltest.Exchange(t, conns[0], data, impltest.Random(5), impltest.Timeout), "echo")
	for _, c := range conns[1:] {
		impltest.ExpectEOF(t, c)
	}
}

// TestOutOfFDsInLoop runs the loop's own accept4 out of descriptors: with
// RLIMIT_NOFILE at what is open, clients connect and send; accept fails
// with EMFILE, and the loop must stop watching the listener for a while
// rather than spin on it (the listener stays readable). Once the limit is
// restored, every client is served. Like impltest.OutOfFDs, it runs in a
// process of its own.
func TestOutOfFDsInLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: leaves out running out of descriptors (a subprocess, a 1 s window)")
	}
	if os.Getenv(envAlone) != t.Name() {
		runAlone(t)
		return
	}
	const k = 20
	impltest.VerifyNone(t)
	r := impltest.Start(t, model, echo.Config{Protocol: echo.Stream, Prefix: impltest.Prefix})
	base := impltest.TakeBaseline(t, r, model)
	port, err := portOf(r.Addr)
	require.NoError(t, err)

	// The clients' sockets exist before the limit drops: connecting takes
	// no descriptor.
	fds := make([]int, k)
	for i := range fds {
		fds[i], err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		// The deadline of every blocking call on it.
		tv := unix.NsecToTimeval(int64(impltest.D))
		require.NoError(t, unix.SetsockoptTimeval(fds[i], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
		require.NoError(t, unix.SetsockoptTimeval(fds[i], unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv))
	}
	closed := false
	closeAll := func() {
		if !closed {
			for _, fd := range fds {
				unix.Close(fd)
			}
			closed = true
		}
	}
	defer closeAll()

	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old))
	restore := func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
	t.Cleanup(restore)
	runtime.GC()
	runtime.GC()
	lim := old
	lim.Cur = uint64(impltest.FDs(t))
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))

	// No require, no /proc reading while out of descriptors.
	var errs []error
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	for i, fd := range fds {
		if err := unix.Connect(fd, sa); err != nil {
			errs = append(errs, fmt.Errorf("connect %d: %w", i, err))
			continue
		}
		// No half-close: a client served at once keeps its descriptor.
		if _, err := unix.Write(fd, fmt.Appendf(nil, "starved client %d", i)); err != nil {
			errs = append(errs, fmt.Errorf("write %d: %w", i, err))
		}
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	window := time.Second
	time.Sleep(window) // the measured window, not a synchronisation
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	unserved := 0
	for _, fd := range fds {
		var b [1]byte
		if _, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); err == unix.EAGAIN {
			unserved++
		}
	}
	restore()
	require.Empty(t, errs)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	t.Logf("out of descriptors for %v: %d of %d clients unserved, %v CPU used by the process", window, unserved, k, cpu)
	require.Positive(t, unserved, "every client was served: the test did not run out of descriptors")
	require.Less(t, cpu, window/2, "the loop spins on a listener it cannot accept from")

	// Recovery: every client is served.
	for i, fd := range fds {
		require.NoError(t, unix.Shutdown(fd, unix.SHUT_WR))
		var got []byte
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err == unix.EINTR {
				// SO_RCVTIMEO makes a signal (the runtime's
				// preemption) interrupt the read even under
				// SA_RESTART: read again.
				continue
			}
			require.NoError(t, err, "client %d (SO_RCVTIMEO is the hang guard)", i)
			if n == 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		v, rest := impltest.SplitReply(t, impltest.Prefix, got)
		model.CheckValues(t, v)
		require.Equal(t, fmt.Sprintf("starved client %d", i), string(rest))
	}
	closeAll()
	impltest.Back(t, r, model, base, impltest.Timeout)
}

func portOf(addr string) (int, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return 0, err
	}
	return a.Port, nil
}

// envAlone names the test a re-executed test binary is to run alone.
const envAlone = "EVENTLOOP_TEST_ALONE"

// runAlone runs t alone in a new process of the test binary (lowering
// RLIMIT_NOFILE here would starve every other test), as impltest does for
// OutOfFDs.
func runAlone(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*impltest.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envAlone+"="+t.Name())
	cmd.WaitDelay = impltest.D
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run() // started, ended and reaped
	t.Logf("%s ran alone in a process of its own:\n%s", t.Name(), out.String())
	require.NoError(t, ctx.Err(), "hang guard: the test process did not end")
	require.NoError(t, err, "%s failed in its own process", t.Name())
}

// TestUnix runs the shared tests over a Unix-domain stream socket.
func TestUnix(t *testing.T) { impltest.UnixSuite(t, model) }

// TestUnixInLoop tests that the loop takes a *net.UnixListener as it takes
// a *net.TCPListener, accepting on it with accept4 itself: no goroutine is
// blocked in Accept while it serves, and the socket file stays until the
// server stops.
func TestUnixInLoop(t *testing.T) {
	impltest.VerifyNone(t)
	m := model.OverUnix()
	r := impltest.Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: impltest.Prefix})
	impltest.ServedNow(t, r, m)
	c := r.Dial(t)
	m.CheckValues(t, impltest.ExpectReply(t, c, impltest.Prefix, []byte("open while the stacks are read\n")))
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	require.False(t, strings.Contains(stacks, "net.(*UnixListener).Accept"), "a goroutine accepts on the Unix listener: the loop did not take it")
	require.FileExists(t, r.Addr)
	impltest.ExpectEOF(t, c)
}
