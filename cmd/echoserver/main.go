// Command echoserver runs a reference echo server standalone.
//
//	echoserver -model fork|thread|event -protocol stream|oneshot|line -prefix '{pid}: ' -addr 127.0.0.1:7007
//	echoserver -addr unix:/run/echo.sock
//
// It prints one line when it listens and exits 0 after a graceful shutdown on
// SIGTERM or SIGINT. On a Unix-domain socket, a stale socket file at the
// path (no server listens on it) is replaced, a path where a server listens
// or that is not a socket is refused (exit status 2), and the socket file
// is removed at shutdown if it is still the one the server bound.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/eventloop"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
	"github.com/echoconform/echoconform/internal/unixsock"
)

func main() {
	forking.Init()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("echoserver", flag.ContinueOnError)
	model := fs.String("model", "thread", "concurrency model: fork (a child process per connection), thread (a goroutine per connection) or event (one epoll loop on one thread)")
	protocol := fs.String("protocol", "stream", "protocol: stream (RFC 862), oneshot (one message, one reply, close) or line (a line at a time)")
	prefix := fs.String("prefix", "", "prefix template written once per connection, e.g. '{pid}: ' ({pid}, {ppid})")
	addr := fs.String("addr", "127.0.0.1:7007", "address to listen on: HOST:PORT (port 0 picks a free one), or unix:PATH for a Unix-domain stream socket")
	maxMsg := fs.Int("max-msg", echo.DefaultMaxMsg, "oneshot: largest message in bytes")
	maxLine := fs.Int("max-line", echo.DefaultMaxLine, "line: longest line echoed whole, in bytes, newline included")
	maxChildren := fs.Int("max-children", forking.DefaultMaxChildren, "fork: most children alive at once")
	child := fs.String("child", forking.ChildBeside(), "fork: the program each connection's child runs: echochild, found beside echoserver by default, starts faster; empty: echoserver itself")
	grace := fs.Duration("grace", 10*time.Second, "how long shutdown waits for in-flight connections")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	cfg := echo.Config{MaxMsg: *maxMsg, MaxLine: *maxLine}
	var err error
	if cfg.Protocol, err = echo.ParseProtocol(*protocol); err != nil {
		return usage("%v", err)
	}
	if cfg.Prefix, err = echo.ParseTemplate(*prefix); err != nil {
		return usage("%v", err)
	}
	if *maxMsg <= 0 {
		return usage("-max-msg must be positive")
	}
	if *maxLine <= 0 {
		return usage("-max-line must be positive")
	}
	var srv interface {
		echo.Server
		Close() error
	}
	switch *model {
	case "thread":
		srv = threading.New(cfg)
	case "event":
		srv = eventloop.New(cfg)
	case "fork":
		f := forking.New(cfg)
		f.MaxChildren = *maxChildren
		if *child != "" {
			if err := forking.CheckChild(*child); err != nil {
				return usage("-child: %v", err)
			}
		}
		f.Child = *child
		srv = f
	default:
		return usage("unknown model %q (want fork, thread or event)", *model)
	}

	// Signals are caught before listening, so that one arriving right after
	// the "listening" line still shuts down gracefully.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ln, where, remove, err := listen(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		return 2
	}
	// The socket file goes before the server stops listening: no server
	// started meanwhile finds it stale and binds a file this one removes.
	defer remove()
	fmt.Printf("echoserver: %s %s listening on %s (pid %d)\n", *model, cfg.Protocol, where, os.Getpid())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		return 1
	case <-sig:
	}
	remove()
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: shutdown: %v\n", err)
		return 1
	}
	if err := <-served; !errors.Is(err, echo.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		return 1
	}
	return 0
}

// listen listens on addr, HOST:PORT or unix:PATH, and returns the
// listener, the address as the "listening" line shows it, and what removes
// the socket file of a Unix socket (nothing for TCP).
func listen(addr string) (net.Listener, string, func(), error) {
	path, ok := strings.CutPrefix(addr, unixsock.Addr)
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", nil, err
		}
		return ln, ln.Addr().String(), func() {}, nil
	}
	if path == "" {
		return nil, "", nil, fmt.Errorf("-addr %s: no path", addr)
	}
	sock, err := unixsock.Listen(path)
	if err != nil {
		return nil, "", nil, err
	}
	remove := func() {
		if err := sock.Remove(); err != nil {
			fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		}
	}
	return sock.Listener, unixsock.Addr + path, remove, nil
}

func usage(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "echoserver: "+format+"\n", a...)
	return 2
}
