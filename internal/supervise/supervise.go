// Package supervise is the supervisor of a server the harness launches: a
// process between the harness and the server that adopts every orphan of
// the server's tree and, when the harness ends the server or dies, kills
// and reaps the whole tree. It is a package of its own, with few imports,
// so that a small program (cmd/echosupervise) can be it: one starts with
// every server, and a harness binary started again pays every package's
// initialisation (44 ms of CPU for echoconform, 11 ms for a small one).
package supervise

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/internal/proc"
)

// Env marks a supervisor process; its value carries the bounds of the kill
// loop (Value), which the harness's deadlines decide.
const Env = "ECHOCONFORM_SUPERVISE"

// EnvRemove names a directory the supervisor removes once it has ended the
// server's tree: the private directory of a Unix socket.
const EnvRemove = "ECHOCONFORM_SUPERVISE_REMOVE"

// Value is what Env is set to: kill bounds the killing of a tree that
// keeps forking, poll is the pause between rounds.
func Value(kill, poll time.Duration) string { return kill.String() + "," + poll.String() }

func bounds(v string) (kill, poll time.Duration, err error) {
	k, p, ok := strings.Cut(v, ",")
	if kill, err = time.ParseDuration(k); ok && err == nil {
		poll, err = time.ParseDuration(p)
	}
	if !ok || err != nil || kill <= 0 || poll <= 0 {
		return 0, 0, fmt.Errorf("bad %s=%q", Env, v)
	}
	return kill, poll, nil
}

// Main runs argv as the server and stays its subreaper: every orphan
// of the server's tree becomes its child. It reports on descriptor 3
// ("started PID", "exit WAITSTATUS", "error MESSAGE") and, when descriptor
// 4 reaches EOF (the harness ends the server, or the harness died), kills
// every process below it, reaps them, removes the directory
// $ECHOCONFORM_SUPERVISE_REMOVE names (a Unix socket's), and exits.
func Main(argv []string) int {
	status, control := os.NewFile(3, "status"), os.NewFile(4, "control")
	syscall.CloseOnExec(3) // the server must not inherit either
	syscall.CloseOnExec(4)
	say := func(format string, a ...any) { fmt.Fprintf(status, format+"\n", a...) }
	if len(argv) == 0 {
		say("error no command")
		return 2
	}
	if err := proc.SetChildSubreaper(); err != nil {
		say("error subreaper: %v", err)
		return 2
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		say("error %v", err)
		return 2
	}
	kill, poll, err := bounds(os.Getenv(Env))
	if err != nil {
		say("error %v", err)
		return 2
	}
	remove := os.Getenv(EnvRemove)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, Env+"=") && !strings.HasPrefix(e, EnvRemove+"=") {
			env = append(env, e)
		}
	}
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	// Told to stop (someone's kill or pkill): the server's tree goes with
	// it, as when the harness ends.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env: env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		say("error %v", err)
		return 2
	}
	say("started %d", pid)

	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, control); close(done) }()
	for {
		// Reap every child: the server, and orphans adopted as subreaper.
		for {
			var ws syscall.WaitStatus
			p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if p <= 0 || err != nil {
				break
			}
			if p == pid {
				say("exit %d", uint32(ws))
			}
		}
		select {
		case <-sigchld:
		case <-done:
			killBelow(pid, kill, poll)
			removeOwned(remove)
			return 0
		case <-stop:
			killBelow(pid, kill, poll)
			removeOwned(remove)
			return 1
		}
	}
}

// killBelow kills every process below the supervisor, over and over until
// none is left (a process may fork while it is being killed), reaping them.
func killBelow(pgid int, kill, poll time.Duration) {
	self := os.Getpid()
	limit := time.Now().Add(kill)
	for time.Now().Before(limit) {
		_ = unix.Kill(-pgid, unix.SIGKILL)
		below, _ := proc.Descendants(self)
		for _, p := range below {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		for {
			var ws syscall.WaitStatus
			if p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); p <= 0 || err != nil {
				break
			}
		}
		if len(below) == 0 {
			return
		}
		time.Sleep(poll)
	}
}

// removeOwned removes the directory the harness made for the server's
// address, once nothing of the server runs.
func removeOwned(dir string) {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
