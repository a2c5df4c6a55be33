// Package forking is the reference echo server of the fork model (Python's
// socketserver.ForkingMixIn): every connection is served by a child process
// of its own, which exits when the connection ends.
//
// Go cannot fork without exec, so a child is a program executed afresh:
// cmd/echochild when Server.Child names it (what echoserver does when it
// finds echochild installed beside it), or else the server's own binary,
// which must then call Init first thing in main (or TestMain):
//
//	func main() {
//		forking.Init()
//		...
//	}
//
// echochild is the faster: it imports no net, so it is a static binary even
// where cgo is enabled, and starts in about 0.9 ms of CPU on a 2-core VM,
// where a child of a typical cgo-linked Go server binary takes 1.5 to 2.5 ms
// (the dynamic loader, glibc's start-up, the package initialisers). The
// server renders the prefix for its child ({pid} is the child's PID, which
// the server knows, and {ppid} its own) and sends it with the connection,
// so that a child needs no template engine.
//
// Starting a process still costs more than Python's plain fork(). So the
// server starts its children ahead of demand: while
// connections arrive it keeps a few spare children, each blocked on a
// control socket of its own, waiting for exactly one connection. An
// accepted connection is handed to the oldest spare over that socket
// (SCM_RIGHTS); the child serves it, and only it, and exits when it ends;
// the server starts another spare meanwhile. A server that receives no
// connection for SpareTimeout ends its spares, so an idle server has no
// children. A spare dies with the server: it reads EOF on its control
// socket, and Pdeathsig kills it.
//
// Idle clients cannot starve active ones at the MaxChildren bound. Below
// the bound a connection gets a child at once, whether it sends or not (so
// that every open connection has its child, as SPEC.md MODEL-1 and
// PREFIX-2 check). At the bound, a new connection waits in the server
// until it is readable (data or EOF), with the descriptor's readiness and
// without reading a byte (a MSG_PEEK): an idle one costs a goroutine and a
// descriptor, not a child. And a readable connection that finds no child
// free reclaims one: the server kills the child whose client has sent
// nothing at all (TCP_INFO bytes_received 0 on a copy of the descriptor
// the server keeps) for the longest time, at least IdleGrace; that idle
// client sees its connection closed. A connection reset before it is
// served gets no child. A connection waiting in the server is in flight for
// Shutdown: it is still served if it sends before Shutdown's context
// ends, and closed when it ends. At most MaxChildren+MaxWaiting
// connections are held at once; past that, new connections wait in the
// listen backlog.
package forking

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/lifecycle"
	"github.com/echoconform/echoconform/internal/forkchild"
)

// Defaults of the Server's fields.
const (
	DefaultMaxChildren  = 256
	DefaultSpare        = 4
	DefaultSpareTimeout = 500 * time.Millisecond
	DefaultMaxWaiting   = 4096
	DefaultIdleGrace    = 10 * time.Second
)

// Init serves the connection and exits when the process is a child started
// by a Server that has no Child program; otherwise it returns at once. Call
// it before anything else in main or TestMain of every binary that runs a
// forking Server.
func Init() {
	v, ok := os.LookupEnv(forkchild.Env)
	if !ok {
		return
	}
	os.Exit(forkchild.Run(v))
}

// Server serves cfg with a child process per connection. It satisfies
// echo.Server.
type Server struct {
	// MaxChildren bounds the children alive at once, spares included (the
	// max_children of ForkingMixIn); at the bound, connections that are
	// ready wait in the server for a child to exit. Set it before Serve; 0
	// means DefaultMaxChildren.
	MaxChildren int
	// MaxWaiting bounds the connections accepted and not handed to a child
	// yet (idle clients, and ready ones waiting for a child): past
	// MaxChildren+MaxWaiting connections held, the server accepts no more
	// and clients queue in the listen backlog. Set it before Serve; 0
	// means DefaultMaxWaiting.
	MaxWaiting int
	// IdleGrace is how long a child's client may send nothing before the
	// server, at MaxChildren with a ready connection waiting, may kill
	// that child for it. Set it before Serve; 0 means DefaultIdleGrace.
	IdleGrace time.Duration
	// Spare is how many idle children the server keeps ready while
	// connections arrive. Set it before Serve; 0 means DefaultSpare, and a
	// negative value none: each child is started when its connection has
	// been accepted.
	Spare int
	// SpareTimeout is how long the spares outlive the last connection.
	// Set it before Serve; 0 means DefaultSpareTimeout.
	SpareTimeout time.Duration
	// Child is the program started for each connection: a path to
	// cmd/echochild, or empty for this binary itself (/proc/self/exe),
	// which must then call Init. echochild is the faster: it links no cgo,
	// and a Go binary that imports net and links libc takes about a
	// millisecond longer to start, once per connection. Set it before
	// Serve.
	Child string

	cfg  echo.Config
	env  []string
	once sync.Once
	lc   lifecycle.Server

	mu       sync.Mutex
	ready    *sync.Cond // a spare joined idle, or the pool closed
	idle     []*child   // spares, oldest first
	starting int        // children being started
	busy     int        // children handed a connection, not reaped yet
	waiting  int        // connections waiting for a child
	all      map[*child]bool
	draining bool          // Shutdown started: no more spares
	closed   bool          // nothing more is started
	lastUse  time.Time     // when a connection last took a child
	backoff  time.Duration // after a child failed to start
	retryAt  time.Time     // no child is started before
	wake     chan struct{}
	closing  chan struct{}
	spawning sync.WaitGroup // the spawners
	reapers  sync.WaitGroup
}

var _ echo.Server = (*Server)(nil)

// New returns a server that speaks cfg.
func New(cfg echo.Config) *Server {
	// A child serves one connection with one goroutine: GOMAXPROCS=1
	// spares it the start of threads it would not use (the last value of a
	// key wins in exec.Cmd's environment).
	cc := forkchild.Config{Oneshot: cfg.Protocol == echo.Oneshot, MaxMsg: cfg.MaxMsg, Quiet: cfg.Quiet}
	if cc.MaxMsg <= 0 {
		cc.MaxMsg = echo.DefaultMaxMsg
	}
	if cc.Quiet <= 0 {
		cc.Quiet = echo.DefaultQuiet
	}
	env := append(os.Environ(), forkchild.Env+"="+cc.Encode(), "GOMAXPROCS=1")
	return &Server{cfg: cfg, env: env}
}

// ChildBeside returns the path of the echochild program in the directory of
// this process's executable, where `go install .../cmd/...` puts it beside
// echoserver and echoconform, or "" when there is none there.
func ChildBeside() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "echochild")
	if CheckChild(p) != nil {
		return ""
	}
	return p
}

// CheckChild reports why path cannot be a Server's Child program, or nil.
func CheckChild(path string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !st.Mode().IsRegular() || st.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// child is one child process, spare or busy.
type child struct {
	cmd  *exec.Cmd
	ctrl int  // the server's end of the control socket; -1 once closed
	busy bool // handed a connection (under Server.mu)
	// peer is the server's copy of the connection's descriptor, to read
	// TCP_INFO, or -1; since is when it was handed (under Server.mu).
	peer      int
	since     time.Time
	reclaimed bool          // killed for a readable connection (under Server.mu)
	done      chan struct{} // closed once the child is reaped
}

func (s *Server) init() {
	s.once.Do(func() {
		s.lc.MaxActive = s.maxChildren() + s.maxWaiting()
		s.ready = sync.NewCond(&s.mu)
		s.all = map[*child]bool{}
		s.wake = make(chan struct{}, 1)
		s.closing = make(chan struct{})
		s.spawning.Add(spawners)
		for range spawners {
			go s.spawner()
		}
	})
}

func (s *Server) maxChildren() int {
	if s.MaxChildren > 0 {
		return s.MaxChildren
	}
	return DefaultMaxChildren
}

func (s *Server) idleGrace() time.Duration {
	if s.IdleGrace > 0 {
		return s.IdleGrace
	}
	return DefaultIdleGrace
}

func (s *Server) maxWaiting() int {
	if s.MaxWaiting > 0 {
		return s.MaxWaiting
	}
	return DefaultMaxWaiting
}

func (s *Server) spare() int {
	switch {
	case s.Spare < 0:
		return 0
	case s.Spare == 0:
		return DefaultSpare
	}
	return s.Spare
}

func (s *Server) spareTimeout() time.Duration {
	if s.SpareTimeout > 0 {
		return s.SpareTimeout
	}
	return DefaultSpareTimeout
}

// Serve accepts connections on ln until Shutdown or Close; it returns
// echo.ErrServerClosed then. Each connection is handed to a child of its
// own, and the server keeps no copy of it.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	return s.lc.Serve(ln, s.handle)
}

// handle starts the life of c in the server: waiting until it is
// readable, then handing it to a child, then tracking the child until it
// is reaped.
func (s *Server) handle(c net.Conn) {
	p := &pending{c: c}
	if !s.lc.Go(func() { s.stop(p) }, func() { s.serve(p) }) {
		c.Close()
	}
}

// pending is one connection from its accept to the end of its child.
type pending struct {
	c        net.Conn
	stopped  atomic.Bool // Shutdown's context ended, or Close
	readable bool        // known to have data or EOF: may reclaim a child
	mu       sync.Mutex
	ch       *child // the child serving it, once handed
}

// stop makes serve return soon: it closes a connection still waiting (to
// become readable or for a child) and kills the child of one handed.
func (s *Server) stop(p *pending) {
	p.stopped.Store(true)
	p.mu.Lock()
	ch := p.ch
	p.mu.Unlock()
	if ch != nil {
		_ = ch.cmd.Process.Kill()
		return
	}
	p.c.Close()
	s.mu.Lock()
	s.ready.Broadcast() // out of take
	s.mu.Unlock()
}

func (s *Server) serve(p *pending) {
	c := p.c
	if resetNow(c) {
		c.Close() // reset before it was served: no child is needed
		return
	}
	if !s.hasRoom() {
		s.awaitReadable(p)
	}
	var ch *child
	// A spare that died before it got the connection is replaced; three
	// failures in a row mean that children cannot serve at all.
	for attempt := 0; attempt < 3; attempt++ {
		ch = s.take(p)
		if ch == nil && !p.readable && !p.stopped.Load() && !s.isClosed() {
			// The bound was reached meanwhile.
			s.awaitReadable(p)
			ch = s.take(p)
		}
		if ch == nil {
			break // stopped, or closed, or reset
		}
		peer := dupConn(c)
		// The server renders the prefix: it knows the child's PID and is
		// its parent.
		err := ch.give(c, s.cfg.Prefix.Render(ch.cmd.Process.Pid, os.Getpid()))
		if err == nil {
			s.mu.Lock()
			if s.all[ch] {
				ch.peer, ch.since = peer, time.Now()
			} else if peer >= 0 {
				_ = unix.Close(peer) // reaped already
			}
			s.mu.Unlock()
			break
		}
		if peer >= 0 {
			_ = unix.Close(peer)
		}
		// The reaper forgets it.
		fmt.Fprintf(os.Stderr, "forking: handing a connection to child %d: %v\n", ch.cmd.Process.Pid, err)
		_ = ch.cmd.Process.Kill()
		ch = nil
	}
	c.Close() // the child has its own copy; ours would keep the client from seeing EOF
	if ch == nil {
		return
	}
	p.mu.Lock()
	p.ch = ch
	p.mu.Unlock()
	if p.stopped.Load() {
		_ = ch.cmd.Process.Kill()
	}
	<-ch.done
}

// waitReadable waits, without reading, until c has data or EOF, and
// returns an error when c is reset or closed meanwhile. It peeks rather
// than only waiting for the poller: readiness that came before the wait
// began would not wake it.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			return false // wait for readiness
		}
		perr = err // nil: data or EOF
		return true
	})
	if err == nil {
		err = perr
	}
	return err
}

// awaitReadable waits until p's connection is readable; it stops p when
// the connection is reset or closed meanwhile.
func (s *Server) awaitReadable(p *pending) {
	if err := waitReadable(p.c); err != nil {
		p.stopped.Store(true) // reset, or closed: no child is needed
		return
	}
	p.readable = true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// resetNow reports whether c is reset already, without waiting or
// reading.
func resetNow(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	reset := false
	var b [1]byte
	_ = rc.Control(func(fd uintptr) {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		reset = err != nil && err != unix.EAGAIN && err != unix.EINTR
	})
	return reset
}

// hasRoom reports whether a connection would get a child now.
func (s *Server) hasRoom() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idle) > 0 || len(s.all)+s.starting < s.maxChildren()
}

// dupConn returns a copy of c's descriptor, or -1.
func dupConn(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	d := -1
	_ = rc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			d = n
		}
	})
	return d
}

// reclaim kills the busy child whose client has sent nothing for the
// longest time, at least IdleGrace, unless one is being reclaimed already. Called with s.mu
// held, at the bound, by a readable connection waiting for a child.
func (s *Server) reclaim() {
	var victim *child
	var next time.Duration // when an idle child becomes reclaimable
	for ch := range s.all {
		if ch.reclaimed && ch.peer >= 0 {
			return // its slot is coming
		}
		if !ch.busy || ch.peer < 0 || ch.reclaimed {
			continue
		}
		info, err := unix.GetsockoptTCPInfo(ch.peer, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.Bytes_received > 0 {
			continue
		}
		if idle := time.Since(ch.since); idle < s.idleGrace() {
			if wait := s.idleGrace() - idle; next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if victim == nil || ch.since.Before(victim.since) {
			victim = ch
		}
	}
	if victim != nil {
		victim.reclaimed = true
		_ = victim.cmd.Process.Kill()
	} else if next > 0 {
		time.AfterFunc(next, func() { // try again then
			s.mu.Lock()
			s.ready.Broadcast()
			s.mu.Unlock()
		})
	}
}

// take returns the oldest spare, waiting for one when there is none, or nil
// once p is stopped or the server closed, or at once when the server is at
// the bound and p is not known to be readable. The child it returns is
// busy.
func (s *Server) take(p *pending) *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUse = time.Now()
	if len(s.idle) == 0 && !s.closed && !p.stopped.Load() {
		s.waiting++
		s.poke()
		for len(s.idle) == 0 && !s.closed && !p.stopped.Load() {
			if len(s.all)+s.starting >= s.maxChildren() {
				if !p.readable {
					// At the bound: wait for data first, and not here.
					s.waiting--
					return nil
				}
				s.reclaim()
			}
			s.ready.Wait()
		}
		s.waiting--
	}
	if s.closed || p.stopped.Load() {
		return nil
	}
	ch := s.idle[0]
	copy(s.idle, s.idle[1:])
	s.idle = s.idle[:len(s.idle)-1]
	ch.busy = true
	s.busy++
	s.poke() // a spare less: start another
	return ch
}

// give sends c and the prefix to the child over its control socket and
// closes the server's end: the child gets the connection, then EOF.
func (ch *child) give(c net.Conn, prefix []byte) error {
	defer ch.closeCtrl()
	if len(prefix) > forkchild.MaxPrefix {
		return fmt.Errorf("the prefix is %d bytes, more than the %d a child takes", len(prefix), forkchild.MaxPrefix)
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("cannot hand a %T to a child process", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.Sendmsg(ch.ctrl, forkchild.Message(prefix), unix.UnixRights(int(fd)), nil, unix.MSG_NOSIGNAL)
	})
	if err == nil {
		err = serr
	}
	return err
}

func (ch *child) closeCtrl() {
	if ch.ctrl >= 0 {
		_ = unix.Close(ch.ctrl)
		ch.ctrl = -1
	}
}

// poke wakes the spawner.
func (s *Server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// wanted is how many children the spawner should start now: one for each
// waiting connection, plus the spares while connections arrive, within
// MaxChildren. Called with s.mu held.
func (s *Server) wanted(now time.Time) int {
	target := s.waiting
	if !s.draining && now.Sub(s.lastUse) < s.spareTimeout() {
		target += s.spare()
	}
	// Every child not reaped yet counts: busy ones, spares, and spares
	// that were ended but have not exited yet.
	room := s.maxChildren() - (len(s.all) + s.starting)
	return min(target-len(s.idle)-s.starting, room)
}

// spawners is how many children may be starting at once. Starting one
// takes the spawner a fork and the child's exec (about a millisecond on a
// busy machine, most of it waiting for the child to be scheduled): two
// keep both cores busy.
const spawners = 2

// spawner starts children, one at a time, while the server wants more,
// and ends the spares once connections stop coming. Several run at once.
func (s *Server) spawner() {
	defer s.spawning.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for !s.closed && !time.Now().Before(s.retryAt) && s.wanted(time.Now()) > 0 {
			s.starting++
			if s.wanted(time.Now()) > 0 {
				s.poke() // more to do: another spawner may start one meanwhile
			}
			s.mu.Unlock()
			ch, err := s.spawn()
			s.mu.Lock()
			s.starting--
			if err != nil {
				// Out of processes or descriptors: back off as the accept
				// loop does, instead of spinning. Every spawner waits:
				// the pokes of the others do not end the wait.
				fmt.Fprintf(os.Stderr, "forking: %v\n", err)
				s.backoff = min(max(2*s.backoff, 5*time.Millisecond), time.Second)
				s.retryAt = time.Now().Add(s.backoff)
				break
			}
			s.backoff = 0
			if s.closed {
				ch.closeCtrl()
				break
			}
			s.idle = append(s.idle, ch)
			s.ready.Broadcast()
		}
		next := time.Hour
		if wait := time.Until(s.retryAt); wait > 0 {
			next = wait
		}
		if !s.closed && s.waiting == 0 && len(s.idle) > 0 {
			if unused := time.Since(s.lastUse); unused >= s.spareTimeout() {
				s.endSpares()
			} else {
				next = min(next, s.spareTimeout()-unused)
			}
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		timer.Reset(next)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.closing:
		}
		timer.Stop()
	}
}

// endSpares closes the control socket of every spare: each reads EOF and
// exits. Called with s.mu held.
func (s *Server) endSpares() {
	for _, ch := range s.idle {
		ch.closeCtrl()
	}
	s.idle = nil
}

// spawn starts a child blocked on a new control socket, and its reaper.
func (s *Server) spawn() (*child, error) {
	cmd, ctrl, err := startChild(s.Child, s.env)
	if err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, ctrl: ctrl, peer: -1, done: make(chan struct{})}
	s.mu.Lock()
	s.all[ch] = true
	s.mu.Unlock()
	s.reapers.Add(1)
	go s.reap(ch)
	return ch, nil
}

// startChild starts the program at path (or re-executes this binary when
// path is empty) with env and the child's end of a new control socket as
// descriptor forkchild.CtrlFD, and returns the server's end.
func startChild(path string, env []string) (*exec.Cmd, int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, fmt.Errorf("control socket: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "control")
	defer theirs.Close()
	// -test.run=^$ keeps a go test binary that forgot Init from running tests.
	args := []string{os.Args[0], "-test.run=^$"}
	if path == "" {
		path = "/proc/self/exe"
	} else {
		args = []string{path}
	}
	cmd := &exec.Cmd{
		Path:       path,
		Args:       args,
		Env:        env,
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{theirs}, // becomes forkchild.CtrlFD
		// A child must not outlive a server that was killed.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		_ = unix.Close(fds[0])
		return nil, -1, err
	}
	return cmd, fds[0], nil
}

// reap waits for ch to exit (no zombie) and forgets it.
func (s *Server) reap(ch *child) {
	defer s.reapers.Done()
	_ = ch.cmd.Wait()
	s.mu.Lock()
	delete(s.all, ch)
	if ch.peer >= 0 {
		_ = unix.Close(ch.peer)
		ch.peer = -1
	}
	if ch.busy {
		s.busy--
	} else {
		// A spare that died before it got a connection.
		for i, c := range s.idle {
			if c == ch {
				s.idle = append(s.idle[:i], s.idle[i+1:]...)
				ch.closeCtrl()
				break
			}
		}
	}
	s.mu.Unlock()
	close(ch.done)
	s.poke()
}

// drain ends the spares and starts no more: only a connection in flight
// that becomes ready gets a child now.
func (s *Server) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	s.endSpares()
}

// closePool stops the spawner and ends the spares; busy children go on.
func (s *Server) closePool() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.draining = true
	close(s.closing)
	s.endSpares()
	s.ready.Broadcast()
}

// killAll kills every child still alive.
func (s *Server) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.all {
		_ = ch.cmd.Process.Kill()
	}
}

// Shutdown stops accepting and ends the spares at once, waits for the
// in-flight connections (those waiting to become readable included, which
// still get a child if they send) and their children, and when ctx ends
// first closes the waiting connections and kills the children (returning
// ctx.Err()). Every child is reaped when it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.drain()
	err := s.lc.Shutdown(ctx)
	s.closePool()
	s.spawning.Wait() // no child is started after this
	done := make(chan struct{})
	go func() { s.reapers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.killAll()
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// Close closes the listeners and kills every child at once.
func (s *Server) Close() error {
	s.init()
	s.closePool()
	s.killAll()
	err := s.lc.Close()
	s.spawning.Wait()
	s.killAll() // and the children the spawners were starting, if any
	s.reapers.Wait()
	return err
}
