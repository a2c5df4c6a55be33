package fuzz

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
	"github.com/echoconform/echoconform/internal/mutant"
)

func TestMain(m *testing.M) {
	forking.Init()
	mutant.Init() // a broken server of the zoo runs as this binary again
	os.Exit(m.Run())
}

// prefix is the template the fuzzed servers write.
var prefix = echo.MustParseTemplate("{pid}: ")

// server is one running server for a whole fuzz process: the engine still
// gets a fresh, independent connection for every input.
type server struct {
	addr string
	cfg  echo.Config
	pid  int // the process {pid} must name; 0 for the forking reference (a child)
}

var (
	serversMu sync.Mutex
	servers   = map[echo.Protocol]*server{}
)

// serve returns the process's server for protocol p, starting it on first
// use; it is stopped when the test or fuzz test ends.
func serve(tb testing.TB, p echo.Protocol) *server {
	serversMu.Lock()
	defer serversMu.Unlock()
	if s, ok := servers[p]; ok {
		return s
	}
	cfg := echo.Config{Protocol: p, Prefix: prefix}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{cfg: cfg, pid: os.Getpid()}
	switch name := os.Getenv("ECHOCONFORM_FUZZ_SERVER"); name {
	case "", "threading", "forking":
		var srv echo.Server = threading.New(cfg)
		if name == "forking" {
			srv, s.pid = forking.New(cfg), 0
		}
		go srv.Serve(ln)
		s.addr = ln.Addr().String()
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
	default:
		ln.Close()
		s.addr, s.pid = startMutant(tb, name, p)
	}
	servers[p] = s
	tb.Cleanup(func() {
		serversMu.Lock()
		delete(servers, p)
		serversMu.Unlock()
	})
	return s
}

// startMutant runs the broken server name of the mutant zoo (thread model)
// as a process of its own until the test ends, and returns its address and
// PID.
func startMutant(tb testing.TB, name string, p echo.Protocol) (string, int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	argv := mutant.Command("", name, "thread", p, prefix.String())
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mutant %s did not listen on %s", name, addr)
		}
	}
}

// dial connects with a deadline on everything that follows.
func (s *server) dial() (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", s.addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.TCPConn), nil
}

// cut splits data into writes as schedule says: each byte of schedule is
// the size of one write (0 means 1), the rest goes in a last write.
func cut(data, schedule []byte) [][]byte {
	var out [][]byte
	for _, s := range schedule {
		if len(data) == 0 {
			break
		}
		n := min(max(int(s), 1), len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	if len(data) > 0 {
		out = append(out, data)
	}
	return out
}

// exchange writes the pieces while reading concurrently, half-closes, and
// returns everything read up to EOF.
func exchange(c *net.TCPConn, pieces [][]byte) []byte {
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		got <- b
	}()
	for _, p := range pieces {
		if _, err := c.Write(p); err != nil {
			break // the server may have closed: the reply tells
		}
	}
	_ = c.CloseWrite()
	return <-got
}
