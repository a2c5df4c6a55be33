package fuzz

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
)

func TestMain(m *testing.M) {
	forking.Init()
	os.Exit(m.Run())
}

// prefix is the template the fuzzed servers write.
var prefix = echo.MustParseTemplate("{pid}: ")

// server is one running server for a whole fuzz process: the engine still
// gets a fresh, independent connection for every input.
type server struct {
	addr string
	cfg  echo.Config
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
	var srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}
	switch os.Getenv("ECHOCONFORM_FUZZ_SERVER") {
	case "", "threading":
		srv = threading.New(cfg)
	case "forking":
		srv = forking.New(cfg)
	default:
		srv = brokenServer(tb, cfg)
	}
	go srv.Serve(ln)
	s := &server{addr: ln.Addr().String(), cfg: cfg}
	servers[p] = s
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		serversMu.Lock()
		delete(servers, p)
		serversMu.Unlock()
	})
	return s
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
