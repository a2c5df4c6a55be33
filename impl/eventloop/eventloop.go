// Package eventloop is the reference echo server of the event model (the
// select/epoll servers of the seed's chapter on multiplexed I/O, asyncio,
// Node): one goroutine, locked to one OS thread, runs epoll_wait over
// non-blocking descriptors and serves every connection of the server, so
// that its thread count does not grow with its connections.
//
// It speaks the protocols exactly as internal/serveconn does, rewritten as
// state machines that never block: a connection owns at most one buffer
// (64 KiB for stream, max-line for line, the prefix and max-msg for
// oneshot), and only while it holds bytes; when a client's echo backs up,
// the server stops reading that client until the echo drains, so a client
// that writes and never reads holds its own buffer and no one else up.
package eventloop

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/lifecycle"
)

// streamBuf is a stream connection's buffer: the most echo a client that
// does not read can leave in the server's memory (the rest waits in the
// kernel's socket buffers, and then in the client).
const streamBuf = 64 << 10

// Server serves cfg from one event loop. It satisfies echo.Server.
type Server struct {
	cfg echo.Config // defaults applied
	// lc accepts on listeners the loop cannot take the descriptor of (any
	// net.Listener but *net.TCPListener and *net.UnixListener) and hands
	// it their connections.
	lc lifecycle.Server

	mu       sync.Mutex
	closed   bool          // Shutdown or Close has begun
	force    bool          // Shutdown's context ended: close every connection
	done     chan struct{} // closed when the loop has ended; nil before it starts
	efd      int           // the loop's eventfd; -1 when no loop runs
	newLns   []*listener   // for the loop to take
	newConns []adopted     // for the loop to take
}

var _ echo.Server = (*Server)(nil)

// New returns a server that speaks cfg.
func New(cfg echo.Config) *Server {
	return &Server{cfg: cfg.WithDefaults(), efd: -1}
}

// listener is a listening socket the loop accepts on with accept4.
type listener struct {
	fd      int
	tcp     bool         // TCP: its connections get TCP_NODELAY
	owner   net.Listener // closed with fd: a *net.UnixListener, which removes its socket file then; or nil
	done    chan error   // Serve's result
	paused  bool         // out of descriptors: not watched until retry
	retry   time.Time
	backoff time.Duration
}

// adopted is a connection accepted by lc, whose descriptor the loop uses
// while nc keeps owning it.
type adopted struct {
	fd int
	nc net.Conn
}

// Serve accepts connections on ln until Shutdown or Close; it returns
// echo.ErrServerClosed then. A *net.TCPListener or *net.UnixListener is
// accepted on inside the loop; any other listener by a goroutine of Serve.
func (s *Server) Serve(ln net.Listener) error {
	l := &listener{done: make(chan error, 1)}
	var sc syscall.Conn
	switch tl := ln.(type) {
	case *net.TCPListener:
		sc, l.tcp = tl, true
	case *net.UnixListener:
		// Closing a *net.UnixListener removes its socket file (unless
		// SetUnlinkOnClose(false)): ln stays open until the loop stops
		// listening and is closed then, before the loop's copy, so that
		// the file goes once, when the server stops listening, and while
		// the socket still listens (a server started meanwhile at the
		// path finds it in use, not stale).
		sc, l.owner = tl, tl
	default:
		return s.lc.Serve(ln, s.adopt)
	}
	fd, err := dupFD(sc)
	// The loop listens through its own descriptor: ln's, registered with
	// Go's poller, is never used from the loop's thread. A TCP ln is
	// closed now: the socket and its backlog stay open with the loop's copy.
	if l.owner == nil || err != nil {
		ln.Close()
	}
	if err != nil {
		return err
	}
	l.fd = fd
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.closeFDs()
		return echo.ErrServerClosed
	}
	if err := s.startLocked(); err != nil {
		s.mu.Unlock()
		l.closeFDs()
		return err
	}
	s.newLns = append(s.newLns, l)
	s.wakeLocked()
	s.mu.Unlock()
	return <-l.done
}

// closeFDs closes the listener's descriptor, and its owner's first: a Unix
// listener's socket file is removed while the socket still listens.
func (ln *listener) closeFDs() {
	if ln.owner != nil {
		ln.owner.Close()
	}
	unix.Close(ln.fd)
}

func dupFD(tl syscall.Conn) (int, error) {
	rc, err := tl.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(u uintptr) { fd, derr = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// adopt hands a connection accepted by lc to the loop, or closes it once
// the server is shutting down (as lifecycle.Server.Go refuses work then).
func (s *Server) adopt(c net.Conn) {
	fd := -1
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(u uintptr) { fd = int(u) })
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fd < 0 || s.closed || s.startLocked() != nil {
		c.Close()
		return
	}
	s.newConns = append(s.newConns, adopted{fd, c})
	s.wakeLocked()
}

// startLocked starts the loop unless it runs.
func (s *Server) startLocked() error {
	if s.done != nil {
		return nil
	}
	l, err := newLoop(s)
	if err != nil {
		return err
	}
	s.done, s.efd = make(chan struct{}), l.efd
	go l.run(s.done)
	return nil
}

// wakeLocked makes the loop's epoll_wait return and look at s. Under s.mu,
// so that the eventfd is never written after the loop closed it.
func (s *Server) wakeLocked() {
	if s.efd < 0 {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(s.efd, one[:])
}

// Shutdown stops accepting at once, waits for in-flight connections, and
// closes them when ctx ends first (returning ctx.Err()). When it returns,
// no goroutine, thread or descriptor of the server remains.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	done := s.done
	s.wakeLocked()
	s.mu.Unlock()
	// lc has no work of its own: this returns once its accept loops have.
	lnErr := s.lc.Shutdown(context.Background())
	if done == nil {
		return lnErr
	}
	select {
	case <-done:
		return lnErr
	default:
	}
	select {
	case <-done:
		return lnErr
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.force = true
	s.wakeLocked()
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return lifecycle.CloseNow(s.Shutdown) }

// The loop.

const (
	maxEvents   = 256
	rounds      = 16 // reads and writes of one connection per wake-up: no client monopolises the loop
	acceptBatch = 64 // accepts per wake-up, for the same reason
	keepFree    = 64 // idle buffers kept for reuse
	lingerLimit = 1 << 20
)

// phase is where a oneshot connection is.
type phase uint8

const (
	reading   phase = iota // the message; a stream or line connection stays here
	replying               // writing prefix+message
	lingering              // reading and discarding before the close
)

// conn is one connection, touched by the loop only.
type conn struct {
	fd  int
	nc  net.Conn // owns fd when adopted; nil when the loop accepted fd
	pre []byte   // stream and line: prefix not yet written

	// buf[s:e] is to be written, buf[e:n] is held: the incomplete line, or
	// the oneshot message so far. buf is nil while nothing is held.
	buf     []byte
	s, e, n int

	eof       bool // the client half-closed
	closed    bool
	phase     phase
	events    uint32    // registered interest
	deadline  time.Time // oneshot: end of the message, or of the linger
	timed     bool      // in the timer heap
	discarded int       // lingering: bytes read and dropped
}

func (c *conn) pending() bool { return len(c.pre) > 0 || c.s < c.e }

// room reports whether a read can take bytes (after compacting).
func (c *conn) room() bool { return c.buf == nil || c.n-c.s < len(c.buf) }

type loop struct {
	s         *Server
	proto     echo.Protocol
	quiet     time.Duration
	epfd, efd int
	prefix    []byte
	bufSize   int
	free      [][]byte
	scratch   []byte
	conns     []*conn // by descriptor
	nconns    int
	lns       map[int]*listener
	paused    int // listeners in back-off
	timers    timerHeap
	now       time.Time
	closing   bool // shutdown seen: listeners closed, none taken
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &loop{
		s: s, proto: s.cfg.Protocol, quiet: s.cfg.Quiet, epfd: epfd, efd: efd,
		// The server's own pid and ppid, as the threading reference's.
		prefix:  s.cfg.Prefix.Render(os.Getpid(), os.Getppid()),
		scratch: make([]byte, 64<<10),
		lns:     map[int]*listener{},
	}
	switch l.proto {
	case echo.Oneshot:
		l.bufSize = len(l.prefix) + s.cfg.MaxMsg
	case echo.Line:
		l.bufSize = s.cfg.MaxLine
	default:
		l.bufSize = streamBuf
	}
	return l, nil
}

func (l *loop) run(done chan struct{}) {
	// Never unlocked: when the loop returns, its thread ends with it
	// rather than joining the runtime's idle threads.
	runtime.LockOSThread()
	defer close(done)
	events := make([]unix.EpollEvent, maxEvents)
	for {
		n, err := unix.EpollWait(l.epfd, events, l.timeout())
		if err != nil && err != unix.EINTR {
			panic("eventloop: epoll_wait: " + err.Error()) // a bad descriptor: a bug of the loop
		}
		l.now = time.Now()
		for _, ev := range events[:max(n, 0)] {
			l.dispatch(int(ev.Fd))
		}
		l.expire()
		if l.closing && len(l.lns) == 0 && l.nconns == 0 && l.end() {
			return
		}
	}
}

// end releases the loop's descriptors unless work arrived meanwhile.
func (l *loop) end() bool {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.newLns)+len(s.newConns) > 0 {
		return false // taken at the next wake-up, which is due
	}
	unix.Close(l.efd)
	s.efd = -1
	unix.Close(l.epfd)
	return true
}

func (l *loop) dispatch(fd int) {
	switch {
	case fd == l.efd:
		l.wake()
	case fd < len(l.conns) && l.conns[fd] != nil:
		l.serve(l.conns[fd])
	default:
		if ln := l.lns[fd]; ln != nil {
			l.accept(ln)
		}
	}
}

// wake takes what Serve, adopt and Shutdown left for the loop.
func (l *loop) wake() {
	var b [8]byte
	_, _ = unix.Read(l.efd, b[:]) // resets the counter
	s := l.s
	s.mu.Lock()
	lns, conns := s.newLns, s.newConns
	s.newLns, s.newConns = nil, nil
	closed, force := s.closed, s.force
	s.mu.Unlock()
	for _, ln := range lns {
		l.lns[ln.fd] = ln
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln.fd)}); err != nil {
			l.closeListener(ln, os.NewSyscallError("epoll_ctl", err))
		}
	}
	for _, a := range conns {
		l.add(a.fd, a.nc)
	}
	if closed {
		l.closing = true
		for _, ln := range l.lns {
			l.closeListener(ln, echo.ErrServerClosed)
		}
	}
	if force {
		for _, c := range l.conns {
			if c != nil {
				l.close(c)
			}
		}
	}
}

func (l *loop) closeListener(ln *listener, err error) {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
	ln.closeFDs()
	delete(l.lns, ln.fd)
	if ln.paused {
		l.paused--
	}
	ln.done <- err
}

func (l *loop) accept(ln *listener) {
	for range acceptBatch {
		fd, err := accept4(ln.fd)
		switch err {
		case nil:
			ln.backoff = 0
			if ln.tcp {
				// As Go's net does for the other references: a small echo
				// must not wait for the client's ACK of the last one
				// (Nagle).
				_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			}
			l.add(fd, nil)
			continue
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED, unix.EPROTO:
			continue // that connection is gone; others may wait
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// The listener stays readable while the backlog holds a
			// connection: unwatch it for a while, as net/http backs off,
			// instead of spinning.
			ln.backoff = min(max(2*ln.backoff, 5*time.Millisecond), time.Second)
			ln.retry, ln.paused = l.now.Add(ln.backoff), true
			l.paused++
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
			return
		default:
			l.closeListener(ln, os.NewSyscallError("accept4", err))
			return
		}
	}
}

// accept4 accepts without asking for the peer's address, which
// unix.Accept4 would allocate.
func accept4(fd int) (int, error) {
	nfd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(nfd), nil
}

// send writes p (not empty) without SIGPIPE: a client gone away is that
// connection's EPIPE, never a signal to the process.
func send(fd int, p []byte) (int, error) {
	n, _, e := syscall.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// add starts serving fd.
func (l *loop) add(fd int, nc net.Conn) {
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, max(64, len(l.conns)))...)
	}
	c := &conn{fd: fd, nc: nc, events: unix.EPOLLIN}
	if l.proto != echo.Oneshot {
		c.pre = l.prefix // written at once, as the other references write it at connect
	}
	l.conns[fd] = c
	l.nconns++
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: c.events, Fd: int32(fd)}); err != nil {
		l.close(c)
		return
	}
	// The client's first bytes may be here already.
	l.serve(c)
}

func (l *loop) close(c *conn) {
	// Removed explicitly: a child forked meanwhile by another goroutine
	// may hold a copy of fd, and epoll forgets a descriptor only when its
	// last copy closes.
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.conns[c.fd] = nil
	l.nconns--
	l.putBuf(c)
	c.closed = true
	if c.nc != nil {
		c.nc.Close()
	} else {
		unix.Close(c.fd)
	}
}

// finish half-closes c, as serveconn does after the echo, and closes it.
func (l *loop) finish(c *conn) {
	_ = unix.Shutdown(c.fd, unix.SHUT_WR)
	l.close(c)
}

func (l *loop) getBuf(c *conn) {
	if c.buf != nil {
		return
	}
	if k := len(l.free); k > 0 {
		c.buf, l.free = l.free[k-1], l.free[:k-1]
	} else {
		c.buf = make([]byte, l.bufSize)
	}
	c.s, c.e, c.n = 0, 0, 0
}

func (l *loop) putBuf(c *conn) {
	if c.buf != nil && len(l.free) < keepFree {
		l.free = append(l.free, c.buf)
	}
	c.buf, c.s, c.e, c.n = nil, 0, 0, 0
}

// serve does what c's descriptor is ready for, then registers what c
// waits for next.
func (l *loop) serve(c *conn) {
	if l.proto == echo.Oneshot {
		switch c.phase {
		case reading:
			l.readMessage(c)
		case replying:
			l.reply(c)
		case lingering:
			l.linger(c)
		}
	} else {
		l.pump(c)
	}
	if !c.closed {
		l.watch(c)
	}
}

// watch registers the interest c's state calls for: level-triggered, so
// that an event not acted upon at once (a round limit) comes again.
func (l *loop) watch(c *conn) {
	var want uint32
	switch {
	case l.proto == echo.Oneshot && c.phase == replying:
		want = unix.EPOLLOUT
	case l.proto == echo.Oneshot:
		want = unix.EPOLLIN
	default:
		// A client whose echo backs up is not read until it drains.
		if !c.eof && c.room() {
			want |= unix.EPOLLIN
		}
		if c.pending() {
			want |= unix.EPOLLOUT
		}
	}
	if want == c.events {
		return
	}
	c.events = want
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: want, Fd: int32(c.fd)}); err != nil {
		l.close(c)
	}
}

func again(err error) bool { return err == unix.EAGAIN || err == unix.EINTR }

// flush writes what c has to write until the socket takes no more. It
// reports whether it wrote anything, and false for ok when it closed c.
func (l *loop) flush(c *conn) (wrote, ok bool) {
	for len(c.pre) > 0 {
		k, err := send(c.fd, c.pre)
		if again(err) {
			return wrote, true
		}
		if err != nil {
			l.close(c)
			return wrote, false
		}
		c.pre, wrote = c.pre[k:], true
	}
	for c.s < c.e {
		k, err := send(c.fd, c.buf[c.s:c.e])
		if again(err) {
			return wrote, true
		}
		if err != nil {
			l.close(c)
			return wrote, false
		}
		c.s += k
		wrote = true
	}
	if c.s == c.n {
		l.putBuf(c) // nothing held: an idle connection holds no buffer
	}
	return wrote, true
}

// fill reads once into c's buffer and marks what is to be written: for
// stream every byte, for line the complete lines, or a max-line piece of a
// longer one (as serveconn.Line). It reports whether it read anything (EOF
// included), and false for ok when it closed c.
func (l *loop) fill(c *conn) (read, ok bool) {
	l.getBuf(c)
	if c.s > 0 && (c.s == c.e || c.n == len(c.buf)) {
		copy(c.buf, c.buf[c.s:c.n])
		c.e -= c.s
		c.n -= c.s
		c.s = 0
	}
	if c.n == len(c.buf) {
		return false, true
	}
	k, err := unix.Read(c.fd, c.buf[c.n:])
	switch {
	case again(err):
		if c.n == 0 {
			l.putBuf(c)
		}
		return false, true
	case err != nil:
		l.close(c)
		return false, false
	case k == 0:
		c.eof = true
		c.e = c.n // line: the final line without a newline goes back too
		return true, true
	}
	old := c.n
	c.n += k
	if l.proto == echo.Stream {
		c.e = c.n
	} else if i := bytes.LastIndexByte(c.buf[old:c.n], '\n'); i >= 0 {
		c.e = old + i + 1
	} else if c.n-c.e == len(c.buf) {
		c.e = c.n
	}
	return true, true
}

// pump is stream and line: write what is due, read while there is room,
// and after the client's half-close and the last echo, half-close too.
func (l *loop) pump(c *conn) {
	for range rounds {
		wrote, ok := l.flush(c)
		if !ok {
			return
		}
		if c.eof {
			break
		}
		read, ok := l.fill(c)
		if !ok {
			return
		}
		if !wrote && !read {
			break
		}
	}
	// Checked after the loop too: EOF read in the last round leaves
	// nothing to wait for, and watch would register no interest at all.
	if c.eof && !c.pending() {
		l.finish(c)
	}
}

// readMessage reads a oneshot message: until EOF, max-msg, or a quiet
// period after the last bytes (the timer), as serveconn.Oneshot.
func (l *loop) readMessage(c *conn) {
	if c.buf == nil {
		l.getBuf(c)
		c.n = copy(c.buf, l.prefix)
	}
	for range rounds {
		k, err := unix.Read(c.fd, c.buf[c.n:])
		switch {
		case again(err):
			if c.n == len(l.prefix) {
				l.putBuf(c) // nothing yet: idle, no buffer
			}
			return
		case err != nil:
			l.close(c)
			return
		case k == 0:
			c.eof = true
			l.startReply(c)
			return
		}
		c.n += k
		if c.n == len(c.buf) {
			l.startReply(c)
			return
		}
		// The first read waits as long as the client needs; after that
		// the message ends at the first quiet period.
		l.setDeadline(c, l.now.Add(l.quiet))
	}
}

func (l *loop) startReply(c *conn) {
	c.phase, c.deadline = replying, time.Time{}
	c.s, c.e = 0, c.n
	l.reply(c)
}

// reply writes prefix+message, half-closes, then closes (after EOF) or
// lingers.
func (l *loop) reply(c *conn) {
	if _, ok := l.flush(c); !ok || c.pending() {
		return
	}
	_ = unix.Shutdown(c.fd, unix.SHUT_WR)
	if c.eof {
		l.close(c)
		return
	}
	// Lingering close: a client still sending past max-msg would get a
	// reset, and a reset can discard the reply before it is read.
	c.phase = lingering
	l.setDeadline(c, l.now.Add(l.quiet))
	l.linger(c)
}

func (l *loop) linger(c *conn) {
	for range rounds {
		k, err := unix.Read(c.fd, l.scratch[:min(len(l.scratch), lingerLimit-c.discarded)])
		if again(err) {
			return
		}
		if err != nil || k == 0 {
			l.close(c)
			return
		}
		if c.discarded += k; c.discarded >= lingerLimit {
			l.close(c)
			return
		}
	}
}

// Timers: oneshot deadlines only move later, so a connection has at most
// one entry, and one found early is put back at its current deadline.

type timer struct {
	at time.Time
	c  *conn
}

type timerHeap []timer

func (l *loop) setDeadline(c *conn, at time.Time) {
	c.deadline = at
	if !c.timed {
		c.timed = true
		l.timers.push(timer{at, c})
	}
}

func (l *loop) expire() {
	for len(l.timers) > 0 && !l.timers[0].at.After(l.now) {
		c := l.timers.pop().c
		c.timed = false
		switch {
		case c.closed || c.deadline.IsZero():
		case c.deadline.After(l.now):
			l.setDeadline(c, c.deadline)
		default:
			c.deadline = time.Time{}
			if c.phase == reading {
				l.startReply(c)
			} else {
				l.close(c)
			}
			if !c.closed {
				l.watch(c)
			}
		}
	}
	if l.paused > 0 {
		for _, ln := range l.lns {
			if ln.paused && !ln.retry.After(l.now) {
				ln.paused = false
				l.paused--
				if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln.fd)}); err != nil {
					l.closeListener(ln, os.NewSyscallError("epoll_ctl", err))
				}
			}
		}
	}
}

// timeout is epoll_wait's: until the nearest deadline, rounded up to a
// millisecond so that the loop does not wake before it; -1 without one.
func (l *loop) timeout() int {
	var next time.Time
	if len(l.timers) > 0 {
		next = l.timers[0].at
	}
	if l.paused > 0 {
		for _, ln := range l.lns {
			if ln.paused && (next.IsZero() || ln.retry.Before(next)) {
				next = ln.retry
			}
		}
	}
	if next.IsZero() {
		return -1
	}
	d := time.Until(next)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a[i].at.Before(a[p].at) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a[last] = timer{}
	a = a[:last]
	for i := 0; ; {
		m, lc, rc := i, 2*i+1, 2*i+2
		if lc < len(a) && a[lc].at.Before(a[m].at) {
			m = lc
		}
		if rc < len(a) && a[rc].at.Before(a[m].at) {
			m = rc
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}
