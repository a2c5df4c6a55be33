package conformance

import (
	"context"
	"fmt"
	"os"

	"github.com/echoconform/echoconform/echo"
)

// InProcess returns a target that runs newServer() in this process, on a
// fresh listener for every check: on loopback TCP, or with the Unix option
// on a fresh path in a private temporary directory.
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

func (inProcessKind) transport(o *options) (transport, error) {
	if o.transport != "" {
		return transportNamed(o.transport), nil
	}
	return transports[0], nil
}

func (k inProcessKind) start(_ context.Context, o *options) (*instance, error) {
	tr, _ := k.transport(o)
	ep, ln, err := tr.listenFresh()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	in := &instance{o: o, ep: ep, pid: os.Getpid()}
	in.srv = k.newServer()
	in.served = make(chan struct{})
	in.dead = in.served
	go func() { in.serveErr = in.srv.Serve(ln); close(in.served) }()
	return in, nil
}
