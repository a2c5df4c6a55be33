// Command echoserver runs a reference echo server standalone.
//
//	echoserver -model fork|thread|event -protocol stream|oneshot|line -prefix '{pid}: ' -addr 127.0.0.1:7007
//
// It prints one line when it listens and exits 0 after a graceful shutdown on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/eventloop"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
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
	addr := fs.String("addr", "127.0.0.1:7007", "address to listen on (port 0 picks a free one)")
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		return 2
	}
	fmt.Printf("echoserver: %s %s listening on %s (pid %d)\n", *model, cfg.Protocol, ln.Addr(), os.Getpid())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		return 1
	case <-sig:
	}
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

func usage(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "echoserver: "+format+"\n", a...)
	return 2
}
