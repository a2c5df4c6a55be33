package conformance

import (
	"context"
	"fmt"
	"net"
)

// Address returns a target for a server that is already running at addr:
// HOST:PORT, or unix:/path for a Unix-domain stream socket. Checks that
// need to stop or restart the server are skipped; checks that need its
// process run when the listener is a process on this machine.
func Address(addr string) Target { return Target{addressKind{addr}} }

type addressKind struct{ addr string }

func (k addressKind) String() string { return "address " + k.addr }

func (k addressKind) caps() capabilities {
	return capabilities{process: func() string {
		ep, err := parseAddress(k.addr)
		if err != nil {
			return err.Error()
		}
		if pids, _ := listenerPIDs(ep); len(pids) == 0 {
			return "the listener of " + k.addr + " is not a process on this machine"
		}
		return ""
	}}
}

func (k addressKind) transport(o *options) (transport, error) {
	ep, err := parseAddress(k.addr)
	if err != nil {
		return nil, err
	}
	return ep.transport(), o.agree(ep.transport())
}

func (k addressKind) start(_ context.Context, o *options) (*instance, error) {
	ep, err := parseAddress(k.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	in := &instance{o: o, ep: ep}
	if ep.local() {
		if pids, _ := listenerPIDs(ep); len(pids) > 0 {
			in.pid = pids[0]
		}
	}
	c, err := ep.dial(net.Dialer{Timeout: o.d()}, o.deadlines())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	c.Close()
	if in.pid != 0 {
		in.watchPID()
	}
	return in, nil
}
