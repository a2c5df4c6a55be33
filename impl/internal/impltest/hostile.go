package impltest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
	"github.com/echoconform/echoconform/internal/reply"
)

// Long runs the heavier variants of the hostile-client tests (-long,
// make long).
var Long = flag.Bool("long", false, "run the heavier variants of the hostile-client tests")

// The hostile-client tests (issue 8): what clients do to a reference
// server that it must survive. Each checks, afterwards, that the server
// still serves and that its goroutines, descriptors and children are back
// to what they were before, and logs one line of the table "case →
// outcome → time → processes left".

// Baseline is a reading of a running server at rest: no children, its
// goroutines and the test process's descriptors.
type Baseline struct {
	Goroutines, FDs int
}

// ServedNow checks that a new connection is served at once: the prefix and
// its echo within D, then EOF after a half-close.
func ServedNow(t testing.TB, r *Running, m Model) {
	t.Helper()
	c := r.Dial(t)
	m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("still serving")))
	ExpectEOF(t, c)
	require.NoError(t, c.Close())
}

// TakeBaseline serves a connection, waits until the server has no
// children (the forking server's spares outlive the last connection by
// its SpareTimeout) and reads the baseline.
func TakeBaseline(t testing.TB, r *Running, m Model) Baseline {
	t.Helper()
	ServedNow(t, r, m)
	Eventually(t, Timeout, noChildren)
	Eventually(t, Timeout, func() (bool, string) {
		// reapers and closing connections end asynchronously
		g1 := runtime.NumGoroutine()
		time.Sleep(tick)
		return runtime.NumGoroutine() == g1, "goroutines do not settle"
	})
	return Baseline{Goroutines: runtime.NumGoroutine(), FDs: SettledFDs(t)}
}

func noChildren() (bool, string) {
	kids, err := proc.Children(os.Getpid())
	if err != nil {
		return false, err.Error()
	}
	if len(kids) > 0 {
		return false, fmt.Sprintf("children %v remain", kids)
	}
	return true, ""
}

// Back checks that the server still serves and that, within within, it is
// back to b: no child, no zombie, no more goroutines, the same descriptors.
func Back(t testing.TB, r *Running, m Model, b Baseline, within time.Duration) {
	t.Helper()
	back := func() (bool, string) {
		if ok, why := noChildren(); !ok {
			return false, why
		}
		if g := runtime.NumGoroutine(); g > b.Goroutines {
			return false, fmt.Sprintf("%d goroutines, %d at the baseline", g, b.Goroutines)
		}
		if fds := FDs(t); fds != b.FDs {
			return false, fmt.Sprintf("%d descriptors open, %d at the baseline", fds, b.FDs)
		}
		return true, ""
	}
	// The forking server may still be starting children for the
	// connections of the case: once it is done, it serves at once.
	Eventually(t, within, back)
	ServedNow(t, r, m)
	Eventually(t, within, back)
}

// Report registers a cleanup, to run after the server's shutdown, that
// checks no process is left and logs the table row of the case. Call it
// right after VerifyNone, before Start.
func Report(t *testing.T, start time.Time) {
	t.Cleanup(func() {
		var kids []int
		Eventually(t, Timeout, func() (bool, string) {
			kids = Children(t)
			return len(kids) == 0, fmt.Sprintf("processes left: %v", kids)
		})
		outcome := "PASS"
		if t.Failed() {
			outcome = "FAIL"
		}
		t.Logf("hostile | %s | %s | %v | processes left: %d", t.Name(), outcome,
			time.Since(start).Round(time.Millisecond), len(kids))
	})
}

// dialAll opens n connections with workers goroutines at a time.
func dialAll(addr string, n, workers int) ([]*net.TCPConn, error) {
	conns := make([]*net.TCPConn, n)
	var next atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					errs <- nil
					return
				}
				c, err := net.DialTimeout("tcp", addr, Timeout)
				if err != nil {
					errs <- fmt.Errorf("dial %d of %d: %w", i, n, err)
					next.Store(int64(n))
					return
				}
				conns[i] = c.(*net.TCPConn)
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		closeAll(conns)
		return nil, first
	}
	return conns, nil
}

func closeAll(conns []*net.TCPConn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// checkValues is Model.CheckValues returning an error, for goroutines.
func (m Model) checkValues(v echo.Values) error {
	if m.Fork {
		if v.PID == os.Getpid() || v.PID <= 0 || v.PPID != os.Getpid() {
			return fmt.Errorf("fork: {pid}=%d {ppid}=%d, server %d", v.PID, v.PPID, os.Getpid())
		}
		return nil
	}
	if v.PID != os.Getpid() || v.PPID != os.Getppid() {
		return fmt.Errorf("thread: {pid}=%d {ppid}=%d, server %d of %d", v.PID, v.PPID, os.Getpid(), os.Getppid())
	}
	return nil
}

// exchange writes msg, half-closes and reads the reply to EOF; it must be
// the prefix and msg.
func (m Model) exchange(c *net.TCPConn, msg []byte, within time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(within)); err != nil {
		return err
	}
	if len(msg) > 0 {
		if _, err := c.Write(msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	return m.readReply(c, msg)
}

// readReply reads to EOF and checks that the reply is the prefix and msg.
func (m Model) readReply(c *net.TCPConn, msg []byte) error {
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", len(got), err)
	}
	v, err := reply.Verify(Prefix, got, msg)
	if err != nil {
		return err
	}
	return m.checkValues(v)
}

// firstErrors collects errors from goroutines and reports the first few.
type firstErrors struct {
	mu    sync.Mutex
	n     int
	first []error
}

func (e *firstErrors) add(err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.first) < 5 {
		e.first = append(e.first, err)
	}
}

func (e *firstErrors) check(t testing.TB, what string) {
	t.Helper()
	require.Zero(t, e.n, "%s: %d failed, the first: %v", what, e.n, errors.Join(e.first...))
}

// ManyConcurrent opens n connections at once and then has every one
// exchange a message of its own, all at the same time; every exchange
// must be served within within. With maxChildren > 0 (fork) the live
// children must never exceed it; with 0 (thread) there must be none.
func ManyConcurrent(t *testing.T, m Model, n, maxChildren int, within time.Duration) {
	if testing.Short() {
		t.Skip(fmt.Sprintf("-short: leaves out %d concurrent hostile clients", n))
	}
	VerifyNone(t)
	Report(t, time.Now())
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	base := TakeBaseline(t, r, m)

	start := time.Now()
	conns, err := dialAll(r.Addr, n, runtime.NumCPU()) // opening them is not what is tested
	require.NoError(t, err)
	defer closeAll(conns)

	stop := make(chan struct{})
	most := make(chan int, 1)
	go func() { // the children, sampled
		peak := 0
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			if kids, err := proc.Children(os.Getpid()); err == nil {
				peak = max(peak, len(existing(kids)))
			}
			select {
			case <-stop:
				most <- peak
				return
			case <-tk.C:
			}
		}
	}()
	var errs firstErrors
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			errs.add(m.exchange(c, fmt.Appendf(nil, "message of client %d of %d", i, n), within))
		})
	}
	wg.Wait()
	close(stop)
	peak := <-most
	t.Logf("%d concurrent connections served in %v; at most %d children alive", n, time.Since(start), peak)
	errs.check(t, fmt.Sprintf("exchanges (each with a hang guard of %v)", within))
	if maxChildren > 0 {
		require.LessOrEqual(t, peak, maxChildren, "children alive at once")
	} else {
		require.Zero(t, peak, "thread: children started")
	}
	closeAll(conns)
	Back(t, r, m, base, Timeout)
}

// IdleClients opens idle connections that never send, then checks that an
// active client is still served promptly (the forking server may close the
// oldest idle ones for it), that an idle one that half-closes
// gets nothing or the prefix then EOF, that one that finally sends is
// served, and that Shutdown, whose context ends while the idle ones still
// wait, closes them and leaves nothing behind. With maxChildren > 0 the
// live children must stay within it.
func IdleClients(t *testing.T, m Model, idle, maxChildren int) {
	VerifyNone(t)
	Report(t, time.Now())
	fds0 := SettledFDs(t)
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	TakeBaseline(t, r, m)

	conns := make([]*net.TCPConn, idle)
	for i := range conns {
		conns[i] = r.DialTCP(t)
	}
	port, err := strconv.Atoi(r.Addr[len("127.0.0.1:"):])
	require.NoError(t, err)
	Eventually(t, D, func() (bool, string) {
		acc, err := proc.AcceptedPorts(port)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, c := range conns {
			if acc[c.LocalAddr().(*net.TCPAddr).Port] {
				n++
			}
		}
		return n == idle, fmt.Sprintf("%d of %d idle connections accepted", n, idle)
	})

	for i := range 3 {
		start := time.Now()
		ServedNow(t, r, m) // within D, or it fails
		t.Logf("active client %d served in %v with %d idle clients open", i, time.Since(start), idle)
		kids := existing(Children(t))
		if maxChildren > 0 {
			require.LessOrEqual(t, len(kids), maxChildren, "children: %s", describe(kids))
		} else {
			require.Empty(t, kids)
		}
	}

	// The forking server ends the child of an idle client, and so its
	// connection, when an active one needs the slot (its documented
	// policy), and which idle clients had a child depends on scheduling:
	// each idle connection used below is one still open, picked right
	// before its use.
	var last []*net.TCPConn
	pick := func() *net.TCPConn {
		for i := len(conns) - 1; i >= 0; i-- {
			if c := conns[i]; established(t, c) {
				conns = append(conns[:i], conns[i+1:]...)
				last = append(last, c)
				return c
			}
		}
		require.FailNow(t, "no idle connection is still open")
		return nil
	}
	// An idle one half-closes: nothing or the prefix, then EOF.
	c := pick()
	require.NoError(t, c.CloseWrite())
	if reply := ReadToEOF(t, c, D); len(reply) > 0 {
		v, rest := SplitReply(t, Prefix, reply)
		m.CheckValues(t, v)
		require.Empty(t, rest, "bytes after the prefix of an empty connection")
	}
	// One sends at last: its prefix comes with its first echo.
	c = pick()
	m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("at last")))
	ExpectEOF(t, c)
	ServedNow(t, r, m)
	inFlight := pick()

	// Shutdown: an idle one is in flight and is still served if it sends;
	// the rest are closed when the context ends.
	// The context ends when the test says so, not after some time: the
	// in-flight exchange must not race a clock on a busy machine.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shut := r.Shutdown(ctx)
	Eventually(t, D, func() (bool, string) { return r.Refused(t), "a new connection is still accepted" })
	m.CheckValues(t, ExpectReply(t, inFlight, Prefix, []byte("during shutdown")))
	ExpectEOF(t, inFlight)
	for _, c := range last {
		require.NoError(t, c.Close())
	}
	select {
	case err := <-shut:
		require.FailNow(t, "Shutdown returned while idle connections were in flight", "err=%v", err)
	default:
	}
	cancel()
	select {
	case err := <-shut:
		require.ErrorIs(t, err, context.Canceled, "Shutdown with idle connections in flight")
	case <-time.After(Timeout):
		require.FailNow(t, "hang guard: Shutdown did not return after its context ended")
	}
	require.ErrorIs(t, r.ServeErr(t), echo.ErrServerClosed)
	// Nothing, or the prefix a thread or child wrote at connect, then EOF
	// (or a reset): not silence.
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(D)))
		got, err := io.ReadAll(c)
		if err != nil {
			require.ErrorIs(t, err, syscall.ECONNRESET, "idle connection %d still open after Shutdown", i)
		}
		if len(got) > 0 {
			_, rest := SplitReply(t, Prefix, got)
			require.Empty(t, rest, "idle connection %d: bytes after the prefix", i)
		}
		require.NoError(t, c.Close())
	}
	require.Empty(t, Children(t), "a child outlives Shutdown")
	Eventually(t, D, func() (bool, string) {
		fds := FDs(t)
		return fds == fds0, fmt.Sprintf("%d descriptors open after Shutdown, %d before Start", fds, fds0)
	})
}

// established reports whether the client's side of c is still
// ESTABLISHED: the server has neither closed nor reset it. TCP_INFO tells
// without reading, so a prefix the server wrote stays unread.
func established(t *testing.T, c *net.TCPConn) bool {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var state uint8
	var ierr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); ierr == nil {
			state = info.State
		}
	}))
	require.NoError(t, ierr)
	return state == unix.BPF_TCP_ESTABLISHED
}

// ResetMidTransfer has n clients send 1 MiB each and reset the connection
// (SO_LINGER 0) while the server echoes, with a bystander connection open
// throughout: the bystander and new connections are still served.
func ResetMidTransfer(t *testing.T, m Model, n int) {
	VerifyNone(t)
	Report(t, time.Now())
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	base := TakeBaseline(t, r, m)
	bystander := r.Dial(t)
	m.CheckValues(t, ExpectReply(t, bystander, Prefix, []byte("bystander")))

	data := Pattern(1<<20, 8)
	var errs firstErrors
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", r.Addr, Timeout)
			if err != nil {
				errs.add(err)
				return
			}
			tc := c.(*net.TCPConn)
			defer tc.Close()
			_ = tc.SetDeadline(time.Now().Add(Timeout))
			done := make(chan struct{})
			go func() { // fails once reset
				defer close(done)
				_, _ = tc.Write(data)
			}()
			// Read some echo first: the server is mid-transfer.
			want := 64<<10 + i*1024
			if _, err := io.ReadFull(tc, make([]byte, want)); err != nil {
				errs.add(fmt.Errorf("client %d: reading the first %d bytes: %w", i, want, err))
			}
			_ = tc.SetLinger(0)
			_ = tc.Close() // RST
			<-done
		})
	}
	wg.Wait()
	errs.check(t, "resetting clients")
	ExpectEcho(t, bystander, []byte("still here"))
	ExpectEOF(t, bystander)
	require.NoError(t, bystander.Close())
	Back(t, r, m, base, Timeout)
}

// Storm opens and closes n connections as fast as workers goroutines can,
// within within: one in 16 closes normally (FIN; the forking server starts
// a child for each), the rest reset. Then
// the server still serves and is back to its baseline.
func Storm(t *testing.T, m Model, n, workers int, within time.Duration) {
	if testing.Short() {
		t.Skip(fmt.Sprintf("-short: leaves out the storm of %d connections", n))
	}
	VerifyNone(t)
	Report(t, time.Now())
	r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
	base := TakeBaseline(t, r, m)

	// The storm's rate is the machine's: as many workers as CPUs.
	workers = max(1, min(workers, runtime.NumCPU()))
	start := time.Now()
	deadline := start.Add(within)
	var next atomic.Int64
	var errs firstErrors
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if time.Now().After(deadline) {
					errs.add(fmt.Errorf("hang guard: the storm did not end within %v (at connection %d; a generous bound, not a timing verdict)", within, i))
					return
				}
				// Not D: on a loaded machine a SYN may wait for a retransmit.
				c, err := net.DialTimeout("tcp", r.Addr, Timeout)
				if err != nil {
					errs.add(fmt.Errorf("connection %d: %w", i, err))
					continue
				}
				if i%16 != 0 {
					_ = c.(*net.TCPConn).SetLinger(0)
				}
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	t.Logf("%d connects and closes in %v", n, time.Since(start))
	errs.check(t, "the storm")
	// The forking server may have a child to start for each connection it
	// accepted before the client's reset arrived: give it the storm's own
	// bound to work them off.
	Back(t, r, m, base, max(3*Timeout, within))
	t.Logf("back to baseline %v after the storm began", time.Since(start).Round(time.Millisecond))
}

// gated is a listener whose Accept waits until the gate opens, and counts
// the accept attempts and EMFILE errors.
type gated struct {
	net.Listener
	mu               sync.Mutex
	gate             chan struct{} // closed: open
	done             chan struct{}
	once             sync.Once
	attempts, emfile atomic.Int64
}

func (l *gated) setGate(open bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if open {
		close(l.gate)
	} else {
		l.gate = make(chan struct{})
	}
}

func (l *gated) Accept() (net.Conn, error) {
	l.mu.Lock()
	gate := l.gate
	l.mu.Unlock()
	select {
	case <-gate:
	case <-l.done:
		return nil, net.ErrClosed
	}
	l.attempts.Add(1)
	c, err := l.Listener.Accept()
	if errors.Is(err, syscall.EMFILE) {
		l.emfile.Add(1)
	}
	return c, err
}

func (l *gated) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// OutOfFDs has k clients connect and send while the test process (the
// server) is out of descriptors: RLIMIT_NOFILE is lowered to just above
// what is open. Accept must fail with EMFILE and back off, not spin; once
// the limit is restored, every client is served. The limit is restored
// when the test ends, whatever happens.
//
// RLIMIT_NOFILE is the process's: lowered in the test process it would
// starve whatever else runs there. So the test re-executes the test binary
// to run only itself (-test.run), and the limit is lowered in that
// process alone.
func OutOfFDs(t *testing.T, m Model, k int) {
	if testing.Short() {
		t.Skip("-short: leaves out running out of descriptors (a subprocess, 100 clients, a 1 s window)")
	}
	if os.Getenv(envSubprocess) != t.Name() {
		runAlone(t)
		return
	}
	VerifyNone(t)
	Report(t, time.Now())
	ln := &gated{gate: make(chan struct{}), done: make(chan struct{})}
	r := StartWith(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix}, func(inner net.Listener) net.Listener {
		ln.Listener = inner
		return ln
	})
	ln.setGate(true)
	base := TakeBaseline(t, r, m)
	// The accept loop is blocked in the listener's Accept, past the gate:
	// the next connection wakes it, and then it waits at the gate.
	ln.setGate(false)
	ServedNow(t, r, m)
	Eventually(t, Timeout, noChildren)

	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old))
	restore := func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
	t.Cleanup(restore)

	// The clients connect and send their message while accept waits, and
	// keep their connections open: the server cannot free descriptors by
	// finishing one.
	conns, err := dialAll(r.Addr, k, runtime.NumCPU())
	require.NoError(t, err)
	defer closeAll(conns)
	for i, c := range conns {
		require.NoError(t, c.SetDeadline(time.Now().Add(Timeout)))
		_, err := c.Write(fmt.Appendf(nil, "starved client %d", i))
		require.NoError(t, err)
	}

	// Out of descriptors: room for two more at most.
	runtime.GC()
	runtime.GC()
	open := FDs(t)
	lim := old
	lim.Cur = uint64(open + 2)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	ln.setGate(true)
	// No require, no /proc reading while out of descriptors.
	window := time.Second
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) && ln.emfile.Load() == 0 {
		time.Sleep(tick)
	}
	time.Sleep(time.Until(deadline))
	attempts, emfile := ln.attempts.Load(), ln.emfile.Load()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	restore()
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	t.Logf("out of descriptors for %v: %d accept attempts, %d EMFILE, %v CPU used by the process", window, attempts, emfile, cpu)
	require.Positive(t, emfile, "accept never failed with EMFILE: the test did not run out of descriptors")
	// Backing off from 5 ms, doubling, makes about 8 failures a second;
	// spinning makes thousands.
	// (Accepts that succeed are progress: descriptors freed meanwhile.)
	assert.Less(t, emfile, int64(40), "the accept loop spins on EMFILE")
	assert.Less(t, cpu, window/2, "the server spins while out of descriptors")

	// Recovery: every client is served.
	var errs firstErrors
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if err := c.CloseWrite(); err != nil {
				errs.add(err)
				return
			}
			errs.add(m.readReply(c, fmt.Appendf(nil, "starved client %d", i)))
		})
	}
	wg.Wait()
	t.Logf("all %d clients served %v after the limit was restored", k, time.Since(start)-window)
	errs.check(t, "clients after the limit was restored")
	closeAll(conns)
	Back(t, r, m, base, Timeout)
}

// envSubprocess names the test that a test process re-executed by
// runAlone is to run.
const envSubprocess = "IMPLTEST_SUBPROCESS"

// runAlone runs t in a new process of the test binary, alone, and fails t
// if it fails there. The test function sees envSubprocess set to its name
// there, and runs its body.
func runAlone(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envSubprocess+"="+t.Name())
	cmd.WaitDelay = D
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run() // started, ended and reaped
	t.Logf("%s ran alone in a process of its own:\n%s", t.Name(), out.String())
	if ctx.Err() != nil {
		require.FailNow(t, "hang guard: the test process did not end", "after %v (a generous bound, not a timing verdict)", 3*Timeout)
	}
	require.NoError(t, err, "%s failed in its own process", t.Name())
}

// existing returns the pids that still exist (zombies included). A listing
// of children is read thread by thread and is not atomic: it may hold a
// child reaped meanwhile besides one started after.
func existing(pids []int) []int {
	var live []int
	for _, pid := range pids {
		if _, err := proc.Read(pid); err == nil {
			live = append(live, pid)
		}
	}
	return live
}

// describe tells what the processes pids are, for a failure message.
func describe(pids []int) string {
	var s []string
	for _, pid := range pids {
		info, err := proc.Read(pid)
		if err != nil {
			s = append(s, fmt.Sprintf("%d (gone)", pid))
			continue
		}
		s = append(s, fmt.Sprintf("%d (%s, state %s, ppid %d)", pid, info.Comm, info.State, info.PPID))
	}
	return strings.Join(s, ", ")
}
