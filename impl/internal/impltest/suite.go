package impltest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

// StreamExact tests that every byte comes back exactly once, in order,
// after the prefix: all 256 byte values, 0 B to 8 MiB, cut into writes of
// many sizes, written while the echo is read (SPEC.md STREAM-1, STREAM-4).
func StreamExact(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	writes := []struct {
		name string
		next func() int
	}{
		{"1", Fixed(1)}, {"7", Fixed(7)}, {"1024", Fixed(1024)}, {"65536", Fixed(65536)}, {"random", Random(1)},
	}
	sizes := []int{0, 1, 1 << 10, 64 << 10, 1 << 20, 8 << 20}
	if testing.Short() {
		sizes = sizes[:len(sizes)-1]
		t.Log("-short: leaves out the 8 MiB transfers")
	}
	for _, size := range sizes {
		data := Pattern(size, uint64(size))
		if size >= 256 {
			require.Len(t, distinct(data), 256, "test data holds every byte value")
		}
		for _, w := range writes {
			// A million 1-byte writes test nothing that 64 thousand do not.
			if size > 0 && size/w.next() > 1<<14 && w.name != "random" {
				continue
			}
			t.Run(fmt.Sprintf("size=%d/write=%s", size, w.name), func(t *testing.T) {
				c := r.Dial(t)
				v, got := SplitReply(t, Prefix, Exchange(t, c, data, w.next, Timeout))
				m.CheckValues(t, v)
				RequireBytes(t, data, got, "echo")
			})
			if size == 0 {
				break // one way to write nothing
			}
		}
	}
	t.Run("template=empty", func(t *testing.T) {
		plain := Start(t, m, echo.Config{Protocol: echo.Stream})
		data := Pattern(64<<10, 2)
		RequireBytes(t, data, Exchange(t, plain.Dial(t), data, Random(2), Timeout), "plain echo")
	})
}

func distinct(b []byte) map[byte]bool {
	set := map[byte]bool{}
	for _, c := range b {
		set[c] = true
	}
	return set
}

// HalfClose tests that after a half-close the client reads the whole echo
// and then EOF within D, and that an empty connection gets nothing or the
// prefix alone (SPEC.md STREAM-3, PREFIX-4).
func HalfClose(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	t.Run("written-then-half-closed", func(t *testing.T) {
		c := r.Dial(t)
		data := Pattern(16<<10, 3) // fits the socket buffers: no reader needed
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(D)))
		_, err := c.Write(data)
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		v, got := SplitReply(t, Prefix, ReadToEOF(t, c, D))
		m.CheckValues(t, v)
		RequireBytes(t, data, got, "echo before EOF")
	})
	t.Run("empty", func(t *testing.T) {
		c := r.Dial(t)
		require.NoError(t, c.CloseWrite())
		reply := ReadToEOF(t, c, D)
		if len(reply) > 0 {
			v, rest := SplitReply(t, Prefix, reply)
			m.CheckValues(t, v)
			require.Empty(t, rest, "bytes after the prefix of an empty connection")
		}
	})
}

// Interactive tests that writes come back while the connection stays open,
// before any half-close (SPEC.md STREAM-2).
func Interactive(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	c := r.Dial(t)
	m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("hello\n")))
	ExpectEcho(t, c, Pattern(64<<10, 4))
	ExpectEcho(t, c, []byte{0})
	ExpectEcho(t, c, []byte("\r\n"))
	ExpectEOF(t, c)
}

// Oneshot tests the oneshot protocol: a message is answered without
// waiting for a half-close, a split message comes back whole, a long one
// is cut to max-msg, and the server closes after the reply (SPEC.md
// ONESHOT-1..5, PREFIX-4).
func Oneshot(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Oneshot, Prefix: Prefix})
	for _, n := range []int{1, 100, echo.DefaultMaxMsg} {
		t.Run(fmt.Sprintf("one-write/%d", n), func(t *testing.T) {
			msg := Pattern(n, uint64(n))
			c := r.Dial(t)
			require.NoError(t, c.SetWriteDeadline(time.Now().Add(D)))
			_, err := c.Write(msg)
			require.NoError(t, err)
			// No half-close: the reply and EOF must come on their own.
			v, got := SplitReply(t, Prefix, ReadToEOF(t, c, D))
			m.CheckValues(t, v)
			RequireBytes(t, msg, got, "reply")
		})
	}
	t.Run("pieces", func(t *testing.T) {
		msg := Pattern(1000, 5)
		c := r.Dial(t)
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(D)))
		pause := time.NewTicker(20 * time.Millisecond)
		defer pause.Stop()
		for piece := range slices.Chunk(msg, 100) {
			_, err := c.Write(piece)
			require.NoError(t, err)
			<-pause.C
		}
		require.NoError(t, c.CloseWrite())
		v, got := SplitReply(t, Prefix, ReadToEOF(t, c, D))
		m.CheckValues(t, v)
		RequireBytes(t, msg, got, "reply to a message in pieces")
	})
	tooLong := func(t *testing.T, r *Running, maxMsg int) {
		msg := Pattern(3*maxMsg+7, 6)
		c := r.Dial(t)
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(D)))
		_, err := c.Write(msg)
		require.NoError(t, err)
		v, got := SplitReply(t, Prefix, ReadToEOF(t, c, D))
		m.CheckValues(t, v)
		RequireBytes(t, msg[:maxMsg], got, "reply to a message longer than max-msg")
		// The server survives it.
		c = r.Dial(t)
		require.NoError(t, c.CloseWrite())
		ReadToEOF(t, c, D)
	}
	t.Run("too-long", func(t *testing.T) { tooLong(t, r, echo.DefaultMaxMsg) })
	t.Run("too-long/max-msg=100", func(t *testing.T) {
		small := Start(t, m, echo.Config{Protocol: echo.Oneshot, Prefix: Prefix, MaxMsg: 100})
		tooLong(t, small, 100)
	})
	t.Run("empty", func(t *testing.T) {
		c := r.Dial(t)
		require.NoError(t, c.CloseWrite())
		reply := ReadToEOF(t, c, D)
		if len(reply) > 0 {
			v, rest := SplitReply(t, Prefix, reply)
			m.CheckValues(t, v)
			require.Empty(t, rest, "bytes after the prefix of an empty message")
		}
	})
	t.Run("quiet=5s", func(t *testing.T) {
		// A pause that would end the message under the default quiet
		// period does not end it under the configured one.
		slow := Start(t, m, echo.Config{Protocol: echo.Oneshot, Prefix: Prefix, Quiet: 5 * time.Second})
		c := slow.Dial(t)
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(D)))
		_, err := c.Write([]byte("first half, "))
		require.NoError(t, err)
		<-time.After(2 * echo.DefaultQuiet)
		_, err = c.Write([]byte("second half"))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		v, got := SplitReply(t, Prefix, ReadToEOF(t, c, D))
		m.CheckValues(t, v)
		require.Equal(t, "first half, second half", string(got))
	})
}

// PIDs tests that each of several concurrent connections carries the
// {pid} and {ppid} of its model: thread, the test process and its parent,
// and no child process started; fork, a distinct live child of the test
// process each, gone after its connection closes (SPEC.md PREFIX-2,
// PREFIX-3, MODEL-1, CONC-3).
func PIDs(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	const n = 8
	conns := make([]Conn, n)
	seen := map[int]int{}
	for i := range conns {
		c := r.Dial(t)
		v := ExpectReply(t, c, Prefix, fmt.Appendf(nil, "connection %d\n", i))
		m.CheckValues(t, v)
		conns[i] = c
		seen[v.PID]++
	}
	// All n are open now.
	kids := Children(t)
	if !m.Fork {
		require.Len(t, seen, 1)
		require.Empty(t, kids, "thread: opening connections started a child process")
	} else {
		require.Len(t, seen, n, "fork: %d concurrent connections share PIDs: %v", n, seen)
		for pid := range seen {
			info, err := proc.Read(pid)
			require.NoError(t, err, "fork: the child serving a connection is gone while it is open")
			require.Equal(t, os.Getpid(), info.PPID, "fork: PID %d is not a child of the server", pid)
			require.NotEqual(t, "Z", info.State, "fork: PID %d is a zombie while its connection is open", pid)
			require.Contains(t, kids, pid)
		}
	}
	// Each still gets its own bytes only.
	for i, c := range conns {
		ExpectEcho(t, c, fmt.Appendf(nil, "again %d", i))
	}
	for _, c := range conns {
		ExpectEOF(t, c)
		require.NoError(t, c.Close())
	}
	if m.Fork {
		Eventually(t, D, func() (bool, string) {
			for pid := range seen {
				if _, err := proc.Read(pid); err == nil {
					return false, fmt.Sprintf("child %d outlives its closed connection", pid)
				}
			}
			return true, ""
		})
	}
}

// Concurrent tests that n connections are all open at once and each is
// served, the last opened first, while all others stay open and idle
// (SPEC.md CONC-1, CONC-2, CONC-3).
func Concurrent(t *testing.T, m Model, n int) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	conns := make([]Conn, n)
	for i := range conns {
		conns[i] = r.Dial(t)
	}
	pids := map[int]bool{}
	for i := n - 1; i >= 0; i-- {
		v := ExpectReply(t, conns[i], Prefix, fmt.Appendf(nil, "message of connection %d", i))
		m.CheckValues(t, v)
		pids[v.PID] = true
	}
	if m.Fork {
		require.Len(t, pids, n, "fork: every open connection has a child of its own")
		require.GreaterOrEqual(t, len(Children(t)), n)
	} else {
		require.Empty(t, Children(t), "thread: connections started a child process")
	}
	for _, c := range conns {
		ExpectEOF(t, c)
	}
}

// ShutdownGraceful tests that Shutdown refuses new connections at once,
// lets the one in flight keep echoing until the client closes it, then
// returns nil, with Serve returning echo.ErrServerClosed (SPEC.md SHUT-1,
// SHUT-2, SHUT-3, SHUT-4, SHUT-6).
func ShutdownGraceful(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	c := r.Dial(t)
	m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("in flight")))

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	shut := r.Shutdown(ctx)

	Eventually(t, D, func() (bool, string) { return r.Refused(t), "a new connection is still accepted" })
	require.ErrorIs(t, r.ServeErr(t), echo.ErrServerClosed, "Serve after Shutdown started")

	ExpectEcho(t, c, []byte("still echoing"))
	ExpectEcho(t, c, Pattern(32<<10, 7))
	select {
	case err := <-shut:
		require.Failf(t, "Shutdown returned while a connection was in flight", "err=%v", err)
	default:
	}
	ExpectEOF(t, c)
	require.NoError(t, c.Close())

	select {
	case err := <-shut:
		require.NoError(t, err, "Shutdown after the in-flight connection finished")
	case <-time.After(Timeout):
		require.FailNow(t, "hang guard: Shutdown did not return within Timeout of the last connection closing")
	}
	require.Empty(t, Children(t), "a child outlives Shutdown")
	r.RequireSocketGone(t)
}

// ShutdownExpired tests that Shutdown with an expired context stops an
// idle open connection, returns the context's error, and leaves no
// goroutine or child behind (SPEC.md SHUT-4, SHUT-7, LEAK-4).
func ShutdownExpired(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	c := r.Dial(t)
	m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("idle from now on")))

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	shut := r.Shutdown(ctx)
	select {
	case err := <-shut:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(D):
		require.FailNow(t, "hang guard: Shutdown with an expired context did not return within D")
	}
	require.ErrorIs(t, r.ServeErr(t), echo.ErrServerClosed)
	require.Empty(t, Children(t), "a child outlives Shutdown")
	r.RequireSocketGone(t)

	// The connection was stopped: EOF (or a reset), not silence.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(D)))
	n, err := c.Read(make([]byte, 1))
	require.Zero(t, n, "bytes after a forced stop")
	if err != io.EOF {
		require.ErrorIs(t, err, syscall.ECONNRESET, "the connection is still open after Shutdown")
	}
	require.True(t, r.Refused(t), "the port is still open after Shutdown")
}

// Leaks tests that n sequential connections leave no zombie, no child, and
// no descriptor of the test process behind (SPEC.md LEAK-1, LEAK-2,
// LEAK-3).
func Leaks(t *testing.T, m Model, n int) {
	if testing.Short() && n > 20 {
		t.Logf("-short: %d connections, not %d", 20, n)
		n = 20
	}
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	session := func(i int) {
		c := r.Dial(t)
		m.CheckValues(t, ExpectReply(t, c, Prefix, fmt.Appendf(nil, "session %d", i)))
		ExpectEOF(t, c)
		require.NoError(t, c.Close())
	}
	settled := func() (bool, string) {
		if kids := Children(t); len(kids) > 0 {
			return false, fmt.Sprintf("children %v remain", kids)
		}
		return true, ""
	}
	session(-1) // a first connection may open descriptors for good
	Eventually(t, D, settled)
	base := SettledFDs(t)

	for i := range n {
		session(i)
	}
	Eventually(t, D, func() (bool, string) {
		z, err := proc.Zombies(os.Getpid())
		require.NoError(t, err)
		if len(z) > 0 {
			return false, fmt.Sprintf("zombie children %v", z)
		}
		if ok, why := settled(); !ok {
			return false, why
		}
		if fds := FDs(t); fds != base {
			return false, fmt.Sprintf("%d descriptors open, %d before %d connections", fds, base, n)
		}
		return true, ""
	})
}

// Line tests the line protocol: each complete line comes back, CR and all,
// without a half-close; lines that share a write all come back; a line
// split across writes comes back once complete; a final
// line without a newline comes back at EOF; lines up to max-line come back
// whole and a longer one leaves the server serving (SPEC.md LINE-1..6).
func Line(t *testing.T, m Model) {
	VerifyNone(t)
	r := Start(t, m, echo.Config{Protocol: echo.Line, Prefix: Prefix})
	t.Run("interactive", func(t *testing.T) {
		c := r.Dial(t)
		m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("hello\n")))
		ExpectEcho(t, c, []byte("CR kept\r\n"))
		ExpectEcho(t, c, []byte("\n"))
		ExpectEcho(t, c, []byte("one\ntwo\nthree\n"))
		ExpectEcho(t, c, append(Pattern(1000, 7), '\n'))
		ExpectEOF(t, c)
	})
	t.Run("split", func(t *testing.T) {
		c := r.Dial(t)
		m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("a\n")))
		require.NoError(t, c.SetDeadline(time.Now().Add(D)))
		_, err := c.Write([]byte("first half, "))
		require.NoError(t, err)
		// The line comes back whole once its newline is written.
		_, err = c.Write([]byte("second half\n"))
		require.NoError(t, err)
		got, err := readAtLeast(c, nil, len("first half, second half\n"))
		require.NoError(t, err)
		require.Equal(t, "first half, second half\n", string(got))
		ExpectEOF(t, c)
	})
	t.Run("final-line-at-eof", func(t *testing.T) {
		c := r.Dial(t)
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(D)))
		_, err := c.Write([]byte("line\nno newline"))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		v, got := SplitReply(t, Prefix, ReadToEOF(t, c, D))
		m.CheckValues(t, v)
		require.Equal(t, "line\nno newline", string(got))
	})
	t.Run("max-line", func(t *testing.T) {
		c := r.Dial(t)
		line := append(Pattern(echo.DefaultMaxLine-1, 8), '\n')
		for i := range line[:len(line)-1] {
			if line[i] == '\n' {
				line[i] = 'x'
			}
		}
		m.CheckValues(t, ExpectReply(t, c, Prefix, line))
		long := append(bytes.Repeat([]byte("y"), 3*echo.DefaultMaxLine+5), '\n')
		ExpectEcho(t, c, long)
		ExpectEcho(t, c, []byte("after a long line\n"))
		ExpectEOF(t, c)
	})
	t.Run("max-line=16", func(t *testing.T) {
		small := Start(t, m, echo.Config{Protocol: echo.Line, MaxLine: 16})
		c := small.Dial(t)
		ExpectEcho(t, c, []byte("fifteen bytes.\n"))
		ExpectEcho(t, c, []byte("a line much longer than sixteen bytes\n"))
		ExpectEOF(t, c)
	})
}
