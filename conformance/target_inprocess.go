package conformance

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/echoconform/echoconform/echo"
)

// InProcess returns a target that runs newServer() in this process, on a
// fresh loopback listener for every check.
func InProcess(name string, newServer func() echo.Server) Target {
	return Target{inProcessKind{name, newServer}}
}

type inProcessKind struct {
	name      string
	newServer func() echo.Server
}

func (k inProcessKind) String() string { return "in-process " + k.name }

func (inProcessKind) caps() capabilities {
	return capabilities{restart: true, serveResult: true, process: func() string { return "" }}
}

func (k inProcessKind) start(_ context.Context, o *options) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	in := &instance{o: o}
	in.addr, in.port, in.pid = ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port, os.Getpid()
	in.srv = k.newServer()
	in.served = make(chan struct{})
	in.dead = in.served
	go func() { in.serveErr = in.srv.Serve(ln); close(in.served) }()
	return in, nil
}
