package conformance

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/echoconform/echoconform/internal/proc"
	"github.com/echoconform/echoconform/internal/testbin"
)

// TestFreePortNotReissued: runs at once in one process are given
// different ports, though the kernel offers a freed port again at once.
func TestFreePortNotReissued(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestPortTakenByAnother: a port chosen for a server may be bound by
// another process first. A listener outside the command's tree does not
// make the command ready, and a command that then fails to bind is started
// again on another port, not judged "never ready".
func TestPortTakenByAnother(t *testing.T) {
	argv := pythonListener(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	calls := 0
	choosePort = func() (int, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return freePort()
	}
	defer func() { choosePort = freePort }()

	in := startCommand(t, argv)
	if calls != 2 || in.ep.(tcpEndpoint).port == taken {
		t.Fatalf("started on port %d after %d choices, want a second port other than %d", in.ep.(tcpEndpoint).port, calls, taken)
	}
	if mine, other := in.listeners(); !mine || other {
		t.Fatalf("listeners on the server's port %d: mine=%v other=%v, want true, false", in.ep.(tcpEndpoint).port, mine, other)
	}
}

// TestSupervisorStoppedEndsServer: a supervisor told to stop (SIGTERM, as
// a kill or pkill sends) ends its server's tree before it exits.
func TestSupervisorStoppedEndsServer(t *testing.T) {
	if !supervised {
		t.Fatal("no supervisor: TestMain must call conformance.Init")
	}
	argv := pythonListener(t)
	in := startCommand(t, argv)
	if in.pid <= 0 || in.pid == in.cmd.Process.Pid {
		t.Fatalf("server %d, supervisor %d: want the server below its supervisor", in.pid, in.cmd.Process.Pid)
	}
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-in.waited
	if err := syscall.Kill(in.pid, 0); err == nil {
		if info, err := proc.Read(in.pid); err == nil && info.State != "Z" {
			t.Fatalf("the server %d outlived its supervisor (state %s)", in.pid, info.State)
		}
	}
}

// pythonListener is the argv of a server that listens on {port} and exits 1
// when its bind fails, as most servers do.
func pythonListener(t *testing.T) []string {
	t.Helper()
	py := testbin.Tool(t, "python3", "python3")
	server := "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',int(sys.argv[1])))\ns.listen()\ntime.sleep(60)"
	return []string{py, "-c", server, "{port}"}
}

// startCommand starts argv as a Command target's server with the default
// options; the test's cleanup stops it.
func startCommand(t *testing.T, argv []string) *instance {
	t.Helper()
	o, err := buildOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := commandKind{argv}.start(context.Background(), &o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(in.close)
	return in
}
