package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/internal/proc"
)

// Process is a server command started by Launch, listening on Addr.
type Process struct {
	Addr   string
	Port   int
	PID    int
	cmd    *exec.Cmd
	waited chan struct{} // closed when the command has been reaped
	state  *os.ProcessState
}

var subreaper sync.Once

// Launch starts argv with "{port}" and "{addr}" in its arguments replaced
// by a free port on 127.0.0.1 and 127.0.0.1:PORT ($PORT is set too), in a
// process group of its own, and returns once the port listens. It fails
// when the command exits first or does not listen within timeout. Call
// Stop to end it: its whole group is ended and reaped.
func Launch(ctx context.Context, argv []string, output io.Writer, timeout time.Duration) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command to launch")
	}
	// Orphans of the server's group (children whose parent died) come to
	// this process, so that Stop can reap them.
	subreaper.Do(func() { _ = proc.SetChildSubreaper() })
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := make([]string, len(argv))
	rep := strings.NewReplacer("{port}", strconv.Itoa(port), "{addr}", addr)
	for i, a := range argv {
		args[i] = rep.Replace(a)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = output, output
	// Its own group, so that Stop reaches every process of the server; and
	// it dies with this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Addr: addr, Port: port, PID: cmd.Process.Pid, cmd: cmd, waited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.waited)
	}()

	// Ready when the port listens: no probe connection reaches the server.
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, _ := proc.IsListening(port); ok {
			return p, nil
		}
		select {
		case <-p.waited:
			return nil, fmt.Errorf("%s exited (%v) before listening on port %d", args[0], p.state, port)
		case <-ctx.Done():
			p.Stop(0)
			return nil, ctx.Err()
		case <-limit.C:
			p.Stop(0)
			return nil, fmt.Errorf("%s did not listen on port %d within %v", args[0], port, timeout)
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM to the server's group, gives it grace to exit, then
// kills what is left of the group and reaps the command and any orphan of
// its group that came to this process. It returns the command's exit
// status as an error, like exec.Cmd.Wait.
func (p *Process) Stop(grace time.Duration) error {
	pgid := p.PID
	_ = proc.KillGroup(syscall.SIGTERM, pgid)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.waited:
	case <-t.C:
	}
	_ = proc.KillGroup(syscall.SIGKILL, pgid)
	<-p.waited
	p.reapOrphans(pgid)
	if p.state != nil && !p.state.Success() {
		return fmt.Errorf("%s: %v", p.cmd.Path, p.state)
	}
	return nil
}

// reapOrphans reaps the children of this process that belong to group pgid:
// processes of the server whose parent died before them.
func (p *Process) reapOrphans(pgid int) {
	kids, err := proc.Children(os.Getpid())
	if err != nil {
		return
	}
	for _, k := range kids {
		if info, err := proc.Read(k); err == nil && info.PGID == pgid {
			proc.Kill(syscall.SIGKILL, k)
			proc.Reap(k)
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
