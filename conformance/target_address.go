package conformance

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/echoconform/echoconform/internal/proc"
)

// Address returns a target for a server that is already running at addr.
// Checks that need to stop or restart the server are skipped; checks that
// need its process run when the listener is a process on this machine.
func Address(addr string) Target { return Target{addressKind{addr}} }

type addressKind struct{ addr string }

func (k addressKind) String() string { return "address " + k.addr }

func (k addressKind) caps() capabilities {
	return capabilities{process: func() string {
		_, p, _ := net.SplitHostPort(k.addr)
		port, _ := strconv.Atoi(p)
		if pids, _ := proc.ListenerPIDs(port); len(pids) == 0 {
			return "the listener of " + k.addr + " is not a process on this machine"
		}
		return ""
	}}
}

func (k addressKind) start(_ context.Context, o *options) (*instance, error) {
	host, p, err := net.SplitHostPort(k.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: bad address %q: %v", ErrNotReady, k.addr, err)
	}
	in := &instance{o: o, addr: k.addr}
	in.port, _ = strconv.Atoi(p)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		if pids, _ := proc.ListenerPIDs(in.port); len(pids) > 0 {
			in.pid = pids[0]
		}
	}
	c, err := net.DialTimeout("tcp", k.addr, o.d())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	c.Close()
	if in.pid != 0 {
		in.watchPID()
	}
	return in, nil
}
