package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

// ErrNotReady wraps every error of a server that could not be started or
// never listened: the harness could not run, the server was not checked.
var ErrNotReady = errors.New("server not ready")

// A Target yields fresh servers to check: a Go server in this process, a
// command that starts a server in any language, or the address of a server
// someone else runs.
type Target struct{ kind serverKind }

// serverKind is one way of having a server to check; each lives in a file
// of its own (target_inprocess.go, target_command.go, target_address.go),
// and the checks ask only for its capabilities.
type serverKind interface {
	String() string
	caps() capabilities
	// transport is how its clients reach it: the target's own, or (in
	// process) what the options ask for; an error when they disagree.
	transport(o *options) (transport, error)
	start(ctx context.Context, o *options) (*instance, error)
}

// capabilities are what the harness can do with a kind of server; a
// check's applies asks them, never which kind it is.
type capabilities struct {
	restart     bool // the harness starts and stops it (SHUT)
	exitStatus  bool // it is a command whose exit the harness sees (SHUT-5)
	serveResult bool // in this process: Serve's and Shutdown's results, goroutines (SHUT-6, LEAK-4)
	// process says why the server's processes cannot be read, or "".
	process func() string
}

// String describes the target for reports.
func (t Target) String() string { return t.kind.String() }

func (t Target) caps() capabilities { return t.kind.caps() }

// instance is one running server.
type instance struct {
	o   *options
	ep  endpoint // where clients reach it
	pid int      // the server process; 0 when unknown

	// in-process
	srv      echo.Server
	served   chan struct{} // closed when Serve returned
	serveErr error         // what Serve returned

	// command
	cmd      *exec.Cmd // the command, or its supervisor
	root     int       // the command's process
	control  *os.File  // supervised: closing it ends the server's tree
	exited   chan struct{}
	exitOnce sync.Once
	status   *syscall.WaitStatus // the command's, once exited
	waited   chan struct{}       // closed when cmd.Wait returned
	output   *tail
	tree     map[int]bool // every process seen in the server's tree

	// dead is closed when the server process ends (in process: when
	// Serve returns); nil when nothing of the server can be watched.
	dead      <-chan struct{}
	stopWatch func()
	stopping  atomic.Bool // a check shuts the server down on purpose

	closeOnce sync.Once
}

// processes are the server's processes: the server process and its
// descendants (in process: this one).
func (in *instance) processes() []int {
	switch {
	case in.srv != nil:
		return []int{os.Getpid()}
	case in.pid == 0:
		return nil
	}
	kids, _ := proc.Descendants(in.pid)
	return append([]int{in.pid}, kids...)
}

// runnable reports whether a thread of the server's processes is running
// or waiting for a CPU; false when the server shares this process (its
// threads are the harness's) or has none to see.
func (in *instance) runnable() bool {
	pids := slices.DeleteFunc(in.processes(), func(pid int) bool { return pid == os.Getpid() })
	return len(pids) > 0 && proc.Runnable(pids...)
}

// deadNow reports whether the server is known to have died (dead is nil,
// and never ready, when nothing of the server can be watched).
func (in *instance) deadNow() bool {
	select {
	case <-in.dead:
		return true
	default:
		return false
	}
}

// watchPID makes dead follow the server process pid.
func (in *instance) watchPID() {
	exited, stop, err := proc.WatchExit(in.pid)
	if err != nil {
		return // no pidfd here: checks see a death where they look
	}
	in.dead, in.stopWatch = exited, stop
}

// death describes how the server ended, for a message.
func (in *instance) death() string {
	switch {
	case in.srv != nil:
		return fmt.Sprintf("Serve returned (%v)", in.serveErr)
	case in.cmd != nil && in.pid == in.root:
		select {
		case <-in.exited:
			return fmt.Sprintf("the server process %d exited (%s)", in.pid, describe(in.status))
		case <-time.After(in.o.d()):
		}
	}
	return fmt.Sprintf("the server process %d ended", in.pid)
}

func (in *instance) startCommand(ctx context.Context, tr transport, argv []string) error {
	// The harness adopts the orphans of the servers it starts, so that it
	// can see them, count them against the server and reap them.
	subreaper.Do(func() { _ = proc.SetChildSubreaper() })
	ep, err := tr.fresh()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	in.ep = ep
	argv = slices.Clone(argv)
	for i, a := range argv {
		argv[i] = ep.expand(a)
	}
	in.output = newTail(64 << 10)
	in.exited, in.waited = make(chan struct{}), make(chan struct{})
	env := append(os.Environ(), ep.env()...)
	if supervised {
		if err := in.startSupervised(argv, env, ep.owned()); err != nil {
			in.close()
			return fmt.Errorf("%w: %v", ErrNotReady, err)
		}
	} else if err := in.startDirect(argv, env); err != nil {
		ep.release()
		return fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	in.tree = map[int]bool{in.root: true}

	// Ready when the port listens: no probe connection disturbs the server.
	// A command that daemonizes exits 0 once a detached descendant, which
	// the subreaper adopts, listens: it is followed to that descendant.
	dl := in.o.deadlines()
	limit := time.NewTimer(dl.ready)
	defer limit.Stop()
	tick := time.NewTicker(dl.poll)
	defer tick.Stop()
	exited := in.exited
	taken := false // a process outside the command's tree listened on the port
	for {
		if mine, other := in.listeners(); mine {
			break
		} else if other {
			taken = true
		}
		select {
		case <-exited:
			if in.status != nil && in.status.Exited() && in.status.ExitStatus() == 0 && len(in.remaining()) > 0 {
				exited = nil // daemonized: its descendants may yet listen
				continue
			}
			err := fmt.Errorf("%w: %s exited (%v) before listening on %s%s", ErrNotReady, argv[0], describe(in.status), ep, in.output.excerpt(10))
			if taken {
				// Another process bound the port first: not the
				// server's fault; the caller starts it on another port.
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			in.close()
			return err
		case <-ctx.Done():
			in.close()
			return fmt.Errorf("%w: %v", ErrNotReady, ctx.Err())
		case <-limit.C:
			in.close()
			return fmt.Errorf("%w: %s did not listen on %s within %v%s", ErrNotReady, argv[0], ep, dl.ready, in.output.excerpt(10))
		case <-tick.C:
			if exited == nil && len(in.remaining()) == 0 {
				in.close()
				return fmt.Errorf("%w: %s exited 0 and every process it left ended before listening on %s%s", ErrNotReady, argv[0], ep, in.output.excerpt(10))
			}
		}
	}
	in.pid = in.serverPID()
	in.track()
	in.watchPID()
	return nil
}

// errPortTaken: a process outside the command's tree listened on the
// port chosen for it, and the command exited before listening.
var errPortTaken = errors.New("the port chosen for the server was taken by another process")

// listeners reports whether a process of the command's tree listens on its
// port, and whether another process does: a port that was free when the
// harness chose it may be bound by anyone before the server binds it, and
// a listener that is not the server's must not make it ready.
func (in *instance) listeners() (mine, other bool) {
	ls, err := in.ep.listeners()
	if err != nil || len(ls) == 0 {
		return false, false
	}
	in.track()
	var pids []int
	for pid := range in.tree {
		pids = append(pids, pid)
	}
	for _, l := range ls {
		if proc.Holds(pids, l.Inode) {
			return true, false
		}
	}
	return false, true
}

// startDirect starts argv as a child of this process, in its own group.
func (in *instance) startDirect(argv, env []string) error {
	// The harness adopts the orphans of the servers it starts, so that it
	// can see them, count them against the server and reap them.
	subreaper.Do(func() { _ = proc.SetChildSubreaper() })
	in.cmd = exec.Command(argv[0], argv[1:]...)
	in.cmd.Env = env
	in.cmd.Stdout, in.cmd.Stderr = in.output, in.output
	// Its own process group, so the whole tree can be ended by group; and it
	// dies with the harness.
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in.cmd.WaitDelay = in.o.deadlines().waitDelay
	if err := in.cmd.Start(); err != nil {
		return err
	}
	in.root = in.cmd.Process.Pid
	go func() {
		_ = in.cmd.Wait()
		ws, _ := in.cmd.ProcessState.Sys().(syscall.WaitStatus)
		in.setExited(&ws)
		close(in.waited)
	}()
	return nil
}

// setExited records the command's end (nil: unknown) the first time.
func (in *instance) setExited(ws *syscall.WaitStatus) {
	in.exitOnce.Do(func() {
		in.status = ws
		close(in.exited)
	})
}

// describe renders a wait status like os.ProcessState does.
func describe(ws *syscall.WaitStatus) string {
	switch {
	case ws == nil:
		return "status unknown"
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", uint32(*ws))
}

// serverPID is the process that holds the listening socket, the one closest
// to the started command: wrappers such as sh -c or interpreter shims are
// common, and forked children may share the listener.
func (in *instance) serverPID() int {
	pids, _ := listenerPIDs(in.ep)
	in.track()
	best, depth := 0, 1<<30
	for _, pid := range pids {
		if !in.tree[pid] {
			continue
		}
		d := 0
		for p := pid; p > 1 && p != in.root && d < 64; d++ {
			info, err := proc.Read(p)
			if err != nil {
				break
			}
			p = info.PPID
		}
		if d < depth {
			best, depth = pid, d
		}
	}
	if best == 0 && len(pids) > 0 {
		best = pids[0]
	}
	if best == 0 {
		best = in.root
	}
	return best
}

// track records every process now in the command's tree: below the
// supervisor, which adopts orphans; or below the command, plus the orphans
// this process adopted that are still in the command's group.
func (in *instance) track() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	if in.control != nil {
		for _, p := range descendantsOf(in.cmd.Process.Pid) {
			in.tree[p] = true
		}
		return
	}
	for _, p := range descendantsOf(in.root) {
		in.tree[p] = true
	}
	if kids, err := proc.Children(os.Getpid()); err == nil {
		for _, k := range kids {
			if info, err := proc.Read(k); err == nil && info.PGID == in.root {
				in.tree[k] = true
				for _, p := range descendantsOf(k) {
					in.tree[p] = true
				}
			}
		}
	}
}

// remaining returns the processes of the server's tree that still run
// (zombies of this process are reaped on the way).
func (in *instance) remaining() []int {
	if in.cmd == nil {
		return nil
	}
	in.track()
	var left []int
	for pid := range in.tree {
		if pid == in.root {
			select {
			case <-in.exited:
				continue
			default:
			}
		} else if in.control == nil {
			proc.ReapZombies(pid)
		}
		info, err := proc.Read(pid)
		if err != nil || info.State == "Z" {
			continue
		}
		left = append(left, pid)
	}
	slices.Sort(left)
	return left
}

// close ends the server for good: in-process, Close or Shutdown with an
// expired context; a command, SIGKILL to its group and every process of its
// tree, then reaping. It is idempotent and bounded.
func (in *instance) close() {
	in.closeOnce.Do(func() {
		if in.stopWatch != nil {
			defer in.stopWatch()
		}
		if in.ep != nil {
			defer in.ep.release() // once nothing of the server runs
		}
		switch {
		case in.srv != nil:
			ctx, cancel := context.WithTimeout(context.Background(), in.o.deadlines().stop)
			defer cancel()
			if c, ok := in.srv.(interface{ Close() error }); ok {
				_ = c.Close()
			} else {
				_ = in.srv.Shutdown(ctx)
			}
			select {
			case <-in.served:
			case <-ctx.Done():
			}
		case in.cmd != nil && in.cmd.Process != nil:
			dl := in.o.deadlines()
			in.track()
			if in.control != nil {
				// The supervisor kills and reaps the whole tree at EOF.
				in.control.Close()
				select {
				case <-in.waited:
				case <-time.After(dl.stop):
				}
			}
			_ = proc.KillGroup(syscall.SIGKILL, in.root)
			for pid := range in.tree {
				proc.Kill(syscall.SIGKILL, pid)
			}
			proc.Kill(syscall.SIGKILL, in.cmd.Process.Pid)
			select {
			case <-in.waited:
			case <-time.After(dl.stop):
			}
			// Orphans adopted by this process: SIGKILL takes effect at
			// once, but their exit is not an event the harness receives.
			for limit := time.Now().Add(dl.stop); len(in.remaining()) > 0 && time.Now().Before(limit); {
				for _, pid := range in.remaining() {
					proc.Kill(syscall.SIGKILL, pid)
				}
				time.Sleep(dl.poll)
			}
		}
	})
}

// excerpt returns the server's last output lines for a failure message.
func (in *instance) excerpt() string {
	if in.output == nil {
		return ""
	}
	return in.output.excerpt(20)
}

// tail keeps the last bytes a server wrote, so that its output is drained
// (a server never blocks on a full pipe) with bounded memory.
type tail struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// excerpt returns the last n lines, indented, after a heading line.
func (t *tail) excerpt(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(t.buf), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("\nlast lines the server wrote (%d bytes in all):\n  | %s", t.total, strings.Join(lines, "\n  | "))
}
