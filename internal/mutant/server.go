package mutant

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

// envChild marks a fork-model child; its value is the encoded childConfig.
const envChild = "ECHOCONFORM_MUTANT_CHILD"

// runServer is the server process: it listens on -addr, serves until
// SIGTERM or SIGINT, shuts down and returns the exit status.
func runServer(args []string) int {
	fs := flag.NewFlagSet("mutant", flag.ContinueOnError)
	name := fs.String(strings.Trim(flagMutant, "-="), "", "the mutant to run")
	model := fs.String("model", ModelThread, "fork or thread")
	protocol := fs.String("protocol", "stream", "stream or oneshot")
	prefix := fs.String("prefix", "", "prefix template")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on: HOST:PORT, or unix:/PATH for a Unix-domain socket")
	maxMsg := fs.Int("max-msg", echo.DefaultMaxMsg, "oneshot: largest message")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, ok := Lookup(*name)
	if !ok {
		return usage("unknown mutant %q", *name)
	}
	cfg := echo.Config{MaxMsg: *maxMsg}
	var err error
	if cfg.Protocol, err = echo.ParseProtocol(*protocol); err != nil {
		return usage("%v", err)
	}
	if cfg.Prefix, err = echo.ParseTemplate(*prefix); err != nil {
		return usage("%v", err)
	}
	if err := m.check(*model, cfg.Protocol); err != nil {
		return usage("%v", err)
	}
	k := m.Knobs
	if k.ServeNil {
		return usage("mutant %s is a fault of Serve's result: run it in process (mutant.New)", m.Name)
	}

	sig := make(chan os.Signal, 1)
	if k.IgnoreTERM {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(sig, syscall.SIGINT)
	} else {
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	}
	time.Sleep(k.ListenDelay)
	network, address := "tcp", *addr
	if path, ok := strings.CutPrefix(*addr, "unix:"); ok {
		network, address = "unix", path
	}
	l, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutant %s: %v\n", m.Name, err)
		return 2
	}
	ln := l.(sockListener)
	if ul, ok := ln.(*net.UnixListener); ok {
		// The socket file goes once the server is done, as a C server's
		// unlink before exit: closing the listener at shutdown refuses
		// new connections, unless a child holds it too.
		ul.SetUnlinkOnClose(false)
		if !k.KeepSocketFile {
			defer os.Remove(address)
		}
	}
	if k.Backlog > 0 {
		// Linux takes a second listen(2) as a new backlog.
		if err := setBacklog(ln, k.Backlog); err != nil {
			fmt.Fprintf(os.Stderr, "mutant %s: %v\n", m.Name, err)
			return 2
		}
	}
	fmt.Printf("mutant %s: %s %s listening on %s (pid %d)\n", m.Name, *model, cfg.Protocol, ln.Addr(), os.Getpid())

	s := newServer(m, *model, cfg)
	served := make(chan error, 1)
	go func() { served <- s.serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(os.Stderr, "mutant %s: %v\n", m.Name, err)
		return 1
	case <-sig:
	}
	if k.ExitAtOnce {
		return 0
	}
	s.shutdown(ln)
	<-served
	if k.HangOnExit {
		if ul, ok := ln.(*net.UnixListener); ok && !k.KeepSocketFile {
			os.Remove(ul.Addr().String())
		}
		fmt.Fprintf(os.Stderr, "mutant %s: shut down; not exiting\n", m.Name)
		for {
			time.Sleep(time.Hour)
		}
	}
	return k.ExitStatus
}

func usage(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "mutant: "+format+"\n", a...)
	return 2
}

// server is the accept loop and the bookkeeping of in-flight connections
// of both models.
type server struct {
	m     Mutant
	k     Knobs
	model string
	cfg   echo.Config

	closing  chan struct{} // closed when shutdown starts
	loopDone chan struct{} // closed when the accept loop returned
	work     sync.WaitGroup
	active   atomic.Int64  // connections accepted and not yet done
	slots    chan struct{} // MaxConns
	latest   connBox       // CrossTalk: the connection accepted last
	never    chan struct{} // what leaked goroutines wait for: never closed

	mu     sync.Mutex
	leaked []any // leaked descriptors, kept reachable so that no finalizer closes them
	// ChildLinger: children inherit the read end and linger until the
	// shutdown closes the write end (no signal a child could miss while
	// it starts).
	lingerR, lingerW *os.File
	ln               sockListener
}

// sockListener is a listener of either transport (*net.TCPListener,
// *net.UnixListener).
type sockListener interface {
	net.Listener
	SetDeadline(time.Time) error
	SyscallConn() (syscall.RawConn, error)
	File() (*os.File, error)
}

func newServer(m Mutant, model string, cfg echo.Config) *server {
	s := &server{m: m, k: m.Knobs, model: model, cfg: cfg,
		closing: make(chan struct{}), loopDone: make(chan struct{}), never: make(chan struct{})}
	if s.k.MaxConns > 0 {
		s.slots = make(chan struct{}, s.k.MaxConns)
	}
	if s.k.ChildLinger {
		var err error
		if s.lingerR, s.lingerW, err = os.Pipe(); err != nil {
			panic(err)
		}
	}
	return s
}

func (s *server) serve(ln sockListener) error {
	defer close(s.loopDone)
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	for {
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
			case <-s.closing:
				return echo.ErrServerClosed
			}
		}
		nc, err := ln.Accept()
		if err != nil {
			s.release()
			select {
			case <-s.closing:
				return echo.ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ECONNABORTED) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		c := nc.(sockConn)
		var first []byte
		if s.k.PeekFirstByte {
			b := make([]byte, 1)
			n, _ := c.Read(b)
			first = b[:n]
		}
		if s.k.CrossTalk {
			s.latest.set(c)
		}
		s.work.Add(1)
		s.active.Add(1)
		run := func() {
			defer s.work.Done()
			defer s.release()
			if s.model == ModelFork {
				s.spawn(c, first)
			} else {
				s.handle(c, first)
			}
			if s.active.Add(-1) == 0 && s.k.ExitAfterOne {
				os.Exit(0)
			}
		}
		if s.k.Serial {
			run()
		} else {
			go run()
		}
	}
}

func (s *server) release() {
	if s.slots != nil {
		<-s.slots
	}
}

// shutdown stops accepting, waits for the in-flight connections (thread)
// or children (fork), and closes the listener.
func (s *server) shutdown(ln sockListener) {
	close(s.closing)
	if s.k.KeepListener {
		_ = ln.SetDeadline(time.Unix(1, 0)) // Accept fails at once; the socket stays
	} else {
		ln.Close()
	}
	<-s.loopDone
	if s.k.ChildLinger {
		s.lingerW.Close() // every lingering child, and any still to come, sees EOF
	}
	s.work.Wait()
	ln.Close()
}

// queued is how many connections wait in the listener's queue, or -1 when
// sock_diag cannot tell.
func queued(ln sockListener) int {
	switch a := ln.Addr().(type) {
	case *net.TCPAddr:
		if lns, err := proc.Listeners(a.Port); err == nil && len(lns) == 1 {
			return lns[0].Queue
		}
	case *net.UnixAddr:
		if lns, err := proc.UnixListeners(a.Name); err == nil && len(lns) == 1 {
			return lns[0].Queue
		}
	}
	return -1
}

func setBacklog(ln sockListener, n int) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), n) }); err != nil {
		return err
	}
	return lerr
}

func (s *server) keep(x any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaked = append(s.leaked, x)
}

// handle serves a connection in this process (thread model).
func (s *server) handle(c sockConn, first []byte) {
	if s.k.LeakFD {
		if f, err := os.Open(os.DevNull); err == nil {
			s.keep(f)
		}
	}
	if s.k.LeakGoroutine {
		go func() { <-s.never }()
	}
	if s.k.LeakThread {
		started := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(started)
			<-s.never
		}()
		<-started
	}
	if s.k.ThreadPerConn {
		// Locked, the goroutine keeps its thread while it waits for the
		// client: the runtime starts another for everything else.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	h := &handler{c: c, cfg: s.cfg, k: s.k, pid: os.Getpid(), ppid: os.Getppid(), first: first, closing: s.closing}
	if s.k.CrossTalk {
		h.out = s.latest.get
	}
	if s.k.ExitAfterOne {
		// Exit before the FIN: the kernel closes the listener first, so
		// the client that sees this connection end finds the port closed.
		h.lastWord = func() {
			if s.k.Serial {
				os.Exit(0) // the others wait in the backlog: they get a reset
			}
			if s.active.Load() != 1 {
				return
			}
			// A connection waiting in the backlog counts as open too.
			if queued(s.ln) == 0 {
				os.Exit(0)
			}
		}
	}
	h.serve()
}

// spawn serves a connection in a child process (fork model): the current
// binary again, with the socket as descriptor 3 (and the linger pipe's
// read end or a copy of the listener as 4, for the mutants that have one),
// and waits for it. The child gets raw descriptors (syscall.ForkExec):
// os/exec and os.StartProcess hand files over with File.Fd, which puts a
// descriptor in blocking mode, and a copy of the listener shares that mode
// with the server's own. Its accept loop would then block in accept(2),
// and its shutdown, which closes the listener, would wait for a connection
// that never comes.
func (s *server) spawn(c sockConn, first []byte) {
	f, err := c.File()
	if s.k.LeakFD {
		s.keep(c) // the server's copy of the socket is never closed
	} else {
		c.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutant %s: %v\n", s.m.Name, err)
		return
	}
	cc := childConfig{name: s.m.Name, protocol: s.cfg.Protocol, maxMsg: s.cfg.MaxMsg, prefix: s.cfg.Prefix.String(), first: first}
	pid, err := s.forkChild(f, cc)
	f.Close() // the child's now: the server keeps no copy while it serves
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutant %s: %v\n", s.m.Name, err)
		return
	}
	// Wait as os/exec does, as most Go forking servers do: in a goroutine
	// holding a pidfd (os.FindProcess opens one), so a child that lives on
	// costs the server a descriptor and a blocked thread.
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	if s.k.Zombies {
		// Wait for the exit, but leave the child unreaped.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		_ = p.Release()
		return
	}
	_, _ = p.Wait()
}

// forkChild starts the child with conn as descriptor 3, and descriptor 4
// for the mutants that give it one. Only the child keeps what it is given
// but the linger pipe: the server lets go of its copy of the listener at
// once, as after a fork.
func (s *server) forkChild(conn *os.File, cc childConfig) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	files := []uintptr{null.Fd(), null.Fd(), 2, conn.Fd()}
	switch {
	case s.k.ChildLinger:
		files = append(files, s.lingerR.Fd())
	case s.k.ChildListener:
		// A listener closed meanwhile: the child serves without it.
		if lfd := s.dupListener(); lfd >= 0 {
			defer unix.Close(lfd)
			files = append(files, uintptr(lfd))
		}
	}
	return syscall.ForkExec("/proc/self/exe", []string{os.Args[0], "-test.run=^$"}, &syscall.ProcAttr{
		Env:   append(os.Environ(), envChild+"="+cc.encode()),
		Files: files,
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
}

// dupListener returns a close-on-exec copy of the listening socket's
// descriptor, or -1 once the listener is closed.
func (s *server) dupListener() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	lfd := -1
	if rc, err := s.ln.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if d, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
				lfd = d
			}
		})
	}
	return lfd
}

// childConfig is what a fork-model child needs to serve its connection.
type childConfig struct {
	name     string
	protocol echo.Protocol
	maxMsg   int
	prefix   string
	first    []byte // bytes the server read already
}

func (cc childConfig) encode() string {
	return strings.Join([]string{"v1", cc.name, cc.protocol.String(), strconv.Itoa(cc.maxMsg), hex.EncodeToString(cc.first), cc.prefix}, "|")
}

func decodeChild(v string) (childConfig, error) {
	f := strings.SplitN(v, "|", 6)
	if len(f) != 6 || f[0] != "v1" {
		return childConfig{}, fmt.Errorf("bad %s=%q", envChild, v)
	}
	cc := childConfig{name: f[1], prefix: f[5]}
	var err error
	if cc.protocol, err = echo.ParseProtocol(f[2]); err != nil {
		return cc, err
	}
	if cc.maxMsg, err = strconv.Atoi(f[3]); err != nil {
		return cc, err
	}
	cc.first, err = hex.DecodeString(f[4])
	return cc, err
}

// runChild serves the connection on descriptor 3 and returns the exit
// status.
func runChild(v string) int {
	cc, err := decodeChild(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutant child: %v\n", err)
		return 2
	}
	m, ok := Lookup(cc.name)
	if !ok {
		fmt.Fprintf(os.Stderr, "mutant child: unknown mutant %q\n", cc.name)
		return 2
	}
	cfg := echo.Config{Protocol: cc.protocol, MaxMsg: cc.maxMsg}
	if cfg.Prefix, err = echo.ParseTemplate(cc.prefix); err != nil {
		fmt.Fprintf(os.Stderr, "mutant child: %v\n", err)
		return 2
	}
	f := os.NewFile(3, "conn")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutant child: descriptor 3 is not a connection: %v\n", err)
		return 2
	}
	h := &handler{c: nc.(sockConn), cfg: cfg, k: m.Knobs, pid: os.Getpid(), ppid: os.Getppid(), first: cc.first}
	h.serve()
	if m.Knobs.ChildLinger {
		// The connection is done; the child is not, until the server's
		// shutdown closes the pipe (or a minute passes).
		linger := os.NewFile(4, "linger")
		_ = linger.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, _ = io.Copy(io.Discard, linger)
	}
	if m.Knobs.Orphans {
		// A helper that outlives its parent and ignores SIGTERM (an ignored
		// signal stays ignored across exec).
		signal.Ignore(syscall.SIGTERM)
		if err := exec.Command("sleep", "60").Start(); err != nil {
			fmt.Fprintf(os.Stderr, "mutant child: %v\n", err)
		}
	}
	return 0
}
