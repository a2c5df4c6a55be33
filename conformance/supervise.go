package conformance

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/echoconform/echoconform/internal/proc"
	"github.com/echoconform/echoconform/internal/supervise"
)

// envSupervisor names the program that supervises launched servers
// (supervisorProgram).
const envSupervisor = "ECHOCONFORM_SUPERVISOR"

// supervisorProgram is the program that supervises a launched server: the
// one $ECHOCONFORM_SUPERVISOR names, else echosupervise beside this
// program's executable (where `go install ./cmd/...` puts it), else this
// program started again. Any program whose main calls Init first will do;
// one starts with every server, so a small one saves each start the
// harness binary's initialisation (cmd/echosupervise: 11 ms of CPU
// against echoconform's 44 ms; a race-instrumented test binary's 0.3 s).
func supervisorProgram() string {
	if p := os.Getenv(envSupervisor); p != "" {
		return p
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "echosupervise")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return "/proc/self/exe"
}

// supervised is set by Init: commands then run under a supervisor.
var supervised bool

// Init lets Command targets run under a supervisor process, so that no
// process of a server's tree survives the harness, even when the harness
// is killed with SIGKILL. Call it first thing in main or TestMain (after
// forking.Init, if the binary runs a forking server); in a supervisor it
// never returns. Without it, Command targets still work, but a harness that
// is killed outright can leave a server's grandchildren behind. The
// supervisor is cmd/echosupervise when it is beside this program or named
// by $ECHOCONFORM_SUPERVISOR, else this program started again.
func Init() {
	if os.Getenv(supervise.Env) == "" {
		supervised = true
		return
	}
	os.Exit(supervise.Main(os.Args[1:]))
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
	in.cmd = &exec.Cmd{
		Path:       supervisorProgram(),
		Args:       append([]string{os.Args[0]}, argv...),
		Env:        append(env, supervise.Env+"="+supervise.Value(superviseKill, supervisePoll), supervise.EnvRemove+"="+remove),
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
