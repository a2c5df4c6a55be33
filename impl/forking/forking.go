// Package forking is the reference echo server of the fork model (Python's
// socketserver.ForkingMixIn): every connection is served by a child process
// of its own.
//
// Go cannot fork without exec, so the server re-executes its own binary for
// each connection and hands the accepted socket over as descriptor 3. The
// binary must therefore call Init first thing in main (or TestMain):
//
//	func main() {
//		forking.Init()
//		...
//	}
package forking

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/lifecycle"
)

// envChild marks a process started by Serve to handle one connection; its
// value is the encoded echo.Config.
const envChild = "ECHOCONFORM_FORKING_CHILD"

// DefaultMaxChildren bounds the live children when Server.MaxChildren is 0.
const DefaultMaxChildren = 256

// Init serves the connection and exits when the process is a child started
// by a Server; otherwise it returns at once. Call it before anything else in
// main or TestMain of every binary that runs a forking Server.
func Init() {
	v, ok := os.LookupEnv(envChild)
	if !ok {
		return
	}
	os.Exit(runChild(v))
}

func runChild(v string) int {
	cfg, err := decodeConfig(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "forking child: %v\n", err)
		return 2
	}
	f := os.NewFile(3, "conn")
	c, err := net.FileConn(f) // dups the descriptor and makes it non-blocking
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "forking child: descriptor 3 is not a connection: %v\n", err)
		return 2
	}
	_ = echo.ServeConn(c, cfg, os.Getpid(), os.Getppid())
	return 0
}

// Server serves cfg with a child process per connection. It satisfies
// echo.Server.
type Server struct {
	// MaxChildren bounds the children alive at once (the max_children of
	// ForkingMixIn); at the bound the server accepts no more until a child
	// exits, and waiting clients queue in the listen backlog. Set it before
	// Serve; 0 means DefaultMaxChildren.
	MaxChildren int

	cfg   echo.Config
	env   []string
	limit sync.Once
	lc    lifecycle.Server
}

var _ echo.Server = (*Server)(nil)

// New returns a server that speaks cfg.
func New(cfg echo.Config) *Server {
	return &Server{cfg: cfg, env: append(os.Environ(), envChild+"="+encodeConfig(cfg))}
}

// Serve accepts connections on ln until Shutdown or Close; it returns
// echo.ErrServerClosed then. Each connection is handed to a new child, and
// the server keeps no copy of it.
func (s *Server) Serve(ln net.Listener) error {
	s.limit.Do(func() {
		s.lc.MaxActive = s.MaxChildren
		if s.lc.MaxActive <= 0 {
			s.lc.MaxActive = DefaultMaxChildren
		}
	})
	return s.lc.Serve(ln, s.spawn)
}

func (s *Server) spawn(c net.Conn) {
	cmd, err := s.start(c)
	c.Close() // the child has its own copy; ours would keep the client from seeing EOF
	if err != nil {
		fmt.Fprintf(os.Stderr, "forking: %v\n", err)
		s.lc.Go(func() {}, func() {}) // releases the slot
		return
	}
	kill := func() { _ = cmd.Process.Kill() }
	wait := func() { _ = cmd.Wait() } // reaps: no zombie
	if !s.lc.Go(kill, wait) {
		kill()
		wait()
	}
}

func (s *Server) start(c net.Conn) (*exec.Cmd, error) {
	fc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("cannot hand a %T to a child process", c)
	}
	f, err := fc.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// -test.run=^$ keeps a go test binary that forgot Init from running tests.
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{os.Args[0], "-test.run=^$"},
		Env:        s.env,
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{f},
		// A child must not outlive a server that was killed.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	return cmd, cmd.Start()
}

// Shutdown stops accepting, waits for the children serving in-flight
// connections to exit, and kills them when ctx ends first (returning
// ctx.Err()). Every child is reaped when it returns.
func (s *Server) Shutdown(ctx context.Context) error { return s.lc.Shutdown(ctx) }

// Close closes the listeners and kills every child at once.
func (s *Server) Close() error { return s.lc.Close() }

func encodeConfig(cfg echo.Config) string {
	return strings.Join([]string{"v1", cfg.Protocol.String(), strconv.Itoa(cfg.MaxMsg),
		strconv.FormatInt(int64(cfg.Quiet), 10), cfg.Prefix.String()}, "|")
}

func decodeConfig(v string) (echo.Config, error) {
	f := strings.SplitN(v, "|", 5)
	if len(f) != 5 || f[0] != "v1" {
		return echo.Config{}, fmt.Errorf("bad %s=%q", envChild, v)
	}
	var cfg echo.Config
	var err error
	if cfg.Protocol, err = echo.ParseProtocol(f[1]); err != nil {
		return cfg, err
	}
	if cfg.MaxMsg, err = strconv.Atoi(f[2]); err != nil {
		return cfg, err
	}
	q, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return cfg, err
	}
	cfg.Quiet = time.Duration(q)
	cfg.Prefix, err = echo.ParseTemplate(f[4])
	return cfg, err
}
