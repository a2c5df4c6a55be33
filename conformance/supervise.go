package conformance

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/internal/proc"
)

// envSupervise marks the supervisor process of a Command target.
const envSupervise = "ECHOCONFORM_SUPERVISE"

// envSupervisor names the program that supervises launched servers;
// unset, it is this program. Any program whose main calls Init first will
// do: a race-instrumented test binary starts several times slower than
// echoconform, and a supervisor starts with every server.
const envSupervisor = "ECHOCONFORM_SUPERVISOR"

// envSuperviseRemove names a directory the supervisor removes once it has
// ended the server's tree: the private directory of a Unix socket.
const envSuperviseRemove = "ECHOCONFORM_SUPERVISE_REMOVE"

// supervised is set by Init: commands then run under a supervisor.
var supervised bool

// Init lets Command targets run under a supervisor process, so that no
// process of a server's tree survives the harness, even when the harness
// is killed with SIGKILL. Call it first thing in main or TestMain (after
// forking.Init, if the binary runs a forking server); in a supervisor it
// never returns. Without it, Command targets still work, but a harness that
// is killed outright can leave a server's grandchildren behind. The
// supervisor is this program, started again, or the program named by
// $ECHOCONFORM_SUPERVISOR (one whose main calls Init first, such as
// echoconform).
func Init() {
	if os.Getenv(envSupervise) == "" {
		supervised = true
		return
	}
	os.Exit(supervise(os.Args[1:]))
}

// supervise runs argv as the server and stays its subreaper: every orphan
// of the server's tree becomes its child. It reports on descriptor 3
// ("started PID", "exit WAITSTATUS", "error MESSAGE") and, when descriptor
// 4 reaches EOF (the harness ends the server, or the harness died), kills
// every process below it, reaps them, removes the directory
// $ECHOCONFORM_SUPERVISE_REMOVE names (a Unix socket's), and exits.
func supervise(argv []string) int {
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
	remove := os.Getenv(envSuperviseRemove)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, envSupervise+"=") && !strings.HasPrefix(e, envSuperviseRemove+"=") {
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
			killBelow(pid)
			removeOwned(remove)
			return 0
		case <-stop:
			killBelow(pid)
			removeOwned(remove)
			return 1
		}
	}
}

// killBelow kills every process below the supervisor, over and over until
// none is left (a process may fork while it is being killed), reaping them.
func killBelow(pgid int) {
	self := os.Getpid()
	limit := time.Now().Add(superviseKill)
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
		time.Sleep(supervisePoll)
	}
}

// removeOwned removes the directory the harness made for the server's
// address, once nothing of the server runs.
func removeOwned(dir string) {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// startSupervised starts argv under a supervisor (this binary again) and
// wires its reports into the instance; the supervisor removes the
// directory remove ("" for none) when it ends the server.
func (in *instance) startSupervised(argv, env []string, remove string) error {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	controlR, controlW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return err
	}
	exe := os.Getenv(envSupervisor)
	if exe == "" {
		exe = "/proc/self/exe"
	}
	in.cmd = &exec.Cmd{
		Path:       exe,
		Args:       append([]string{os.Args[0]}, argv...),
		Env:        append(env, envSupervise+"=1", envSuperviseRemove+"="+remove),
		Stdout:     in.output,
		Stderr:     in.output,
		ExtraFiles: []*os.File{statusW, controlR},
		// Its own group, apart from the server's; it dies with the harness
		// (and its control pipe's EOF makes it end the server first).
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		WaitDelay:   in.o.deadlines().waitDelay,
	}
	err = in.cmd.Start()
	statusW.Close()
	controlR.Close()
	if err != nil {
		statusR.Close()
		controlW.Close()
		return err
	}
	in.control = controlW
	started := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(statusR)
		first := true
		report := func(err error) {
			if first {
				first = false
				started <- err
			}
		}
		for sc.Scan() {
			word, arg, _ := strings.Cut(sc.Text(), " ")
			switch word {
			case "started":
				in.root, _ = strconv.Atoi(arg)
				report(nil)
			case "error":
				report(fmt.Errorf("%s", arg))
			case "exit":
				v, _ := strconv.ParseUint(arg, 10, 32)
				ws := syscall.WaitStatus(v)
				in.setExited(&ws)
			}
		}
		statusR.Close()
		report(fmt.Errorf("the supervisor ended before starting %s", argv[0]))
		_ = in.cmd.Wait()
		in.setExited(nil)
		close(in.waited)
	}()
	return <-started
}

// descendantsOf lists the live processes below pid, excluding skip.
func descendantsOf(pid int, skip ...int) []int {
	d, _ := proc.Descendants(pid)
	return slices.DeleteFunc(d, func(p int) bool { return slices.Contains(skip, p) })
}
