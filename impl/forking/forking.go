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
// PREFIX-2 check). The bound is reached when each of the MaxChildren
// slots serves a connection or is promised to one that came first; a
// spare, or one still starting, leaves its slot free. At the bound, a new
// connection waits in the server
// until it is readable (data or EOF), with the descriptor's readiness and
// without reading a byte (a MSG_PEEK): an idle one costs a goroutine and a
// descriptor, not a child. And a readable connection that finds no child
// free reclaims one: the server kills the child whose client has sent
// nothing at all (TCP_INFO bytes_received 0 on a copy of the descriptor
// the server keeps; on a Unix socket, which counts no bytes, nothing
// waiting in it and nothing read by the child since the handover, as
// /proc/PID/io counts) for the longest time, at least IdleGrace; that idle
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
	lc   lifecycle.Server // the listeners and the connections in flight
	pool *pool            // the children
}

var _ echo.Server = (*Server)(nil)

// New returns a server that speaks cfg.
func New(cfg echo.Config) *Server {
	// A child serves one connection with one goroutine: GOMAXPROCS=1
	// spares it the start of threads it would not use (the last value of a
	// key wins in exec.Cmd's environment).
	d := cfg.WithDefaults()
	cc := forkchild.Config{Protocol: d.Protocol.String(), MaxMsg: d.MaxMsg, Quiet: d.Quiet, MaxLine: d.MaxLine}
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

func (s *Server) init() {
	s.once.Do(func() {
		s.lc.MaxActive = s.maxChildren() + s.maxWaiting()
		s.pool = newPool(s.Child, s.env, s.maxChildren(), s.spare(), s.spareTimeout(), s.idleGrace())
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
	s.pool.wakeWaiters() // out of take
}

func (s *Server) serve(p *pending) {
	c := p.c
	if resetNow(c) {
		c.Close() // reset before it was served: no child is needed
		return
	}
	if !s.pool.hasRoom() {
		s.awaitReadable(p)
	}
	var ch *child
	// A spare that died before it got the connection is replaced; three
	// failures in a row mean that children cannot serve at all.
	for attempt := 0; attempt < 3; attempt++ {
		ch = s.pool.take(p.readable, &p.stopped)
		if ch == nil && !p.readable && !p.stopped.Load() && !s.pool.isClosed() {
			// The bound was reached meanwhile.
			s.awaitReadable(p)
			ch = s.pool.take(p.readable, &p.stopped)
		}
		if ch == nil {
			break // stopped, or closed, or reset
		}
		peer := dupConn(c)
		rchar := ch.beforeHandover(peer)
		// The server renders the prefix: it knows the child's PID and is
		// its parent.
		err := ch.give(c, s.cfg.Prefix.Render(ch.cmd.Process.Pid, os.Getpid()))
		if err == nil {
			s.pool.handed(ch, peer, rchar)
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

// Shutdown stops accepting and ends the spares at once, waits for the
// in-flight connections (those waiting to become readable included, which
// still get a child if they send) and their children, and when ctx ends
// first closes the waiting connections and kills the children (returning
// ctx.Err()). Every child is reaped when it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.pool.drain()
	err := s.lc.Shutdown(ctx)
	s.pool.close()
	s.pool.waitSpawners() // no child is started after this
	done := s.pool.reaped()
	select {
	case <-done:
	case <-ctx.Done():
		s.pool.killAll()
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
	s.pool.close()
	s.pool.killAll()
	err := s.lc.Close()
	s.pool.waitSpawners()
	s.pool.killAll() // and the children the spawners were starting, if any
	<-s.pool.reaped()
	return err
}
