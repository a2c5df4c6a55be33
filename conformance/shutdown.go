package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/proc"
)

func init() {
	register("SHUT-1", check{applies: needsRestart, ends: true, run: func(ck *checker) { ck.shutdown(ck.dl.D/4, true).judgeNewConn(ck) }})
	register("SHUT-2", check{applies: needsRestart, ends: true, run: func(ck *checker) { ck.shutdown(ck.dl.D, false).judgeRefused(ck) }})
	register("SHUT-3", check{applies: needsRestart, ends: true, run: func(ck *checker) { ck.sharedShutdown().judgeInFlight(ck) }})
	register("SHUT-4", check{applies: needsRestart, ends: true, run: func(ck *checker) { ck.sharedShutdown().judgeStopped(ck) }})
	register("SHUT-5", check{applies: onlyCommand, ends: true, run: func(ck *checker) { ck.sharedShutdown().judgeStatus(ck) }})
	register("SHUT-6", check{applies: onlyInProcess, ends: true, run: func(ck *checker) { ck.sharedShutdown().judgeReturns(ck) }})
	register("SHUT-7", check{applies: needsRestart, ends: true, run: func(ck *checker) { ck.sharedShutdown().judgeOrphans(ck) }})
	register("SHUT-8", check{applies: leavesFile, ends: true, run: func(ck *checker) { ck.sharedShutdown().judgeFile(ck) }})
}

func needsRestart(ck *checker) string {
	if !ck.target.caps().restart {
		return "the harness cannot stop a server it did not start (address target)"
	}
	return ""
}

// leavesFile: a server that binds a file (a Unix socket) is to remove it.
func leavesFile(ck *checker) string {
	if why := needsRestart(ck); why != "" {
		return why
	}
	tr, err := ck.target.kind.transport(ck.o)
	if err != nil {
		return err.Error()
	}
	return tr.noFile()
}

func onlyCommand(ck *checker) string {
	if !ck.target.caps().exitStatus {
		return "exit status applies to a command"
	}
	return ""
}

func onlyInProcess(ck *checker) string {
	if !ck.target.caps().serveResult {
		return "Serve and Shutdown results apply to an in-process server"
	}
	return ""
}

// shutdownObs is what one shutdown of a fresh server looked like; each
// SHUT check runs the scenario on its own server and judges one part.
type shutdownObs struct {
	how         string        // "Shutdown" or "SIGTERM to PID n"
	listenFor   time.Duration // how long the port still listened after shutdown began
	stillListen bool          // still listening after D
	newConn     error         // nil when a new connection was served (SHUT-1); only with probe
	probed      bool
	inFlight    error // the in-flight connection's exchange
	stopped     bool  // the server stopped after the in-flight connection closed
	stopWait    time.Duration
	portFree    bool
	status      *syscall.WaitStatus
	exited      bool
	shutdownErr error
	serveErr    error
	returned    bool
	left        []int
	leftFile    string // what the server left at its address once stopped
}

// sharedShutdown is the shutdown SHUT-3 to SHUT-7 share: they judge the
// same scenario (no wait for the port, no probe), each its own part, so a
// server that ignores SIGTERM costs the harness one stop bound, not five.
func (ck *checker) sharedShutdown() *shutdownObs {
	obs, by, err := ck.o.shut.get(ck, func() *shutdownObs { return ck.shutdown(0, false) })
	if err != nil {
		ck.Fatalf("the shutdown this check judges could not be observed: it %v", err)
	}
	if by != ck.req.ID {
		ck.note("judged on the shutdown observed in %s", by)
	}
	return obs
}

// shutdown shuts a fresh server down with one connection in flight. It
// waits up to listenWait for the port to stop listening, and with probe
// tries a new connection after that.
func (ck *checker) shutdown(listenWait time.Duration, probe bool) *shutdownObs {
	in := ck.server()
	obs := &shutdownObs{}
	baseKids := liveChildren(os.Getpid())
	inFlight := ck.openAccepted(1)[0]
	ck.awaitHandler()
	in.track()

	// Start the shutdown.
	shutdownDone := make(chan error, 1)
	began := time.Now()
	if in.srv != nil {
		obs.how = "Shutdown"
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), ck.dl.stop)
			defer cancel()
			shutdownDone <- in.srv.Shutdown(ctx)
		}()
	} else {
		obs.how = fmt.Sprintf("SIGTERM to the server process %d", in.pid)
		proc.Kill(syscall.SIGTERM, in.pid)
	}

	// SHUT-2: the port stops listening.
	obs.stillListen = !ck.poll(listenWait, func() bool { ok, _ := isListening(in.ep); return !ok })
	obs.listenFor = time.Since(began)

	// What follows is judged once the server has taken the shutdown: its
	// own process has let go of the listener (a process it started may
	// hold the port still). On a fast harness a probe or the in-flight
	// exchange would otherwise run before a server, even one that drops
	// everything at once, has even seen the signal; on a busy one the
	// server may take seconds to run its handler. The wait is the stop
	// bound (SHUT-4 allows no more for the whole shutdown).
	if obs.stillListen {
		ck.poll(ck.dl.stop, func() bool {
			if in.srv != nil {
				ok, err := isListening(in.ep)
				return err != nil || !ok
			}
			pids, err := listenerPIDs(in.ep)
			return err != nil || !slices.Contains(pids, in.pid)
		})
	}

	// SHUT-1: a new connection is not served.
	if probe {
		obs.probed = true
		obs.newConn = ck.probeNewConn()
	}

	// SHUT-3: the in-flight connection completes.
	_, obs.inFlight = ck.exchange(inFlight, ck.message(0))
	inFlight.close()

	// SHUT-4..7: the server stops, and nothing of it remains.
	bound := ck.dl.stop
	t0 := time.Now()
	if in.srv != nil {
		select {
		case obs.shutdownErr = <-shutdownDone:
			obs.stopped = true
		case <-time.After(bound):
		}
		select {
		case <-in.served:
			obs.returned, obs.serveErr = true, in.serveErr
		case <-time.After(time.Until(t0.Add(bound))):
		}
	} else {
		// A zombie has stopped; who reaps it (os/exec, the supervisor, a
		// wrapper) is not this check's business, and reaping it here would
		// steal its exit status.
		obs.stopped = ck.poll(bound, func() bool {
			info, err := proc.Read(in.pid)
			return err != nil || info.State == "Z"
		})
		select {
		case <-in.exited:
			obs.exited, obs.status = true, in.status
		case <-time.After(time.Until(t0.Add(bound))):
		}
	}
	obs.stopWait = time.Since(t0)
	obs.portFree = ck.poll(time.Until(t0.Add(bound)), func() bool { ok, _ := isListening(in.ep); return !ok })
	ck.poll(bound, func() bool {
		obs.left = ck.leftover(in, baseKids)
		return len(obs.left) == 0
	})
	if obs.stopped {
		obs.leftFile = in.ep.leftover()
	}
	return obs
}

// leftover lists what remains of the server's processes: its tree for a
// command, new children of this process for an in-process server.
func (ck *checker) leftover(in *instance, baseKids []int) []int {
	if in.cmd != nil {
		return in.remaining()
	}
	var left []int
	for _, k := range liveChildren(os.Getpid()) {
		if !slices.Contains(baseKids, k) {
			left = append(left, k)
		}
	}
	return left
}

// probeNewConn connects after shutdown began and returns nil when the new
// connection was served.
func (ck *checker) probeNewConn() error {
	c, err := ck.dial()
	if err != nil {
		return err // refused: not served
	}
	defer c.close()
	msg := []byte("after shutdown")
	c.d = ck.dl.D / 4
	if err := c.write(msg); err != nil {
		return err
	}
	_ = ck.o.proto.endMessage(c)
	got, err := c.readUntil(nil, 1<<20, c.d, func(b []byte) bool { return len(b) > 0 })
	if len(got) > 0 {
		return nil
	}
	if err == nil {
		err = errors.New("no reply")
	}
	return err
}

func (o *shutdownObs) judgeNewConn(ck *checker) {
	if o.newConn == nil {
		ck.Fatalf("after %s, a new connection was still served (the port listened for %v after shutdown began)", o.how, o.listenFor.Round(time.Millisecond))
	}
}

func (o *shutdownObs) judgeRefused(ck *checker) {
	if o.stillListen {
		ck.Fatalf("after %s the port still listened %v later, while a connection was in flight: a process of the server keeps the listening socket", o.how, ck.dl.D)
	}
}

func (o *shutdownObs) judgeInFlight(ck *checker) {
	if o.inFlight != nil {
		ck.Fatalf("a connection in flight when shutdown began (%s) did not complete: %v", o.how, o.inFlight)
	}
}

func (o *shutdownObs) judgeStopped(ck *checker) {
	switch {
	case !o.stopped:
		ck.Fatalf("after %s and the last connection closed, the server had not stopped %v later", o.how, o.stopWait.Round(time.Millisecond))
	case !o.portFree:
		ck.Fatalf("after %s the server stopped, but the port still listened", o.how)
	}
}

func (o *shutdownObs) judgeStatus(ck *checker) {
	switch {
	case !o.exited:
		ck.Fatalf("after %s the command had not exited", o.how)
	case o.status == nil:
		ck.Fatalf("after %s the command exited, but its status could not be read", o.how)
	case !o.status.Exited():
		ck.Fatalf("after %s the command ended by a signal (%s), not by exiting 0", o.how, describe(o.status))
	case o.status.ExitStatus() != 0:
		ck.Fatalf("after %s the command exited with status %d, want 0", o.how, o.status.ExitStatus())
	}
}

func (o *shutdownObs) judgeReturns(ck *checker) {
	switch {
	case !o.stopped:
		ck.Fatalf("Shutdown did not return within %v after the last connection closed", o.stopWait.Round(time.Millisecond))
	case o.shutdownErr != nil:
		ck.Fatalf("Shutdown returned %v, want nil: the in-flight connection had finished", o.shutdownErr)
	case !o.returned:
		ck.Fatalf("Serve had not returned after Shutdown")
	case !errors.Is(o.serveErr, echo.ErrServerClosed):
		ck.Fatalf("Serve returned %v, want echo.ErrServerClosed", o.serveErr)
	}
}

func (o *shutdownObs) judgeFile(ck *checker) {
	switch {
	case !o.stopped:
		ck.skip("after %s the server had not stopped (SHUT-4), so what it leaves behind cannot be judged", o.how)
	case o.leftFile != "":
		ck.Fatalf("after %s, %s", o.how, o.leftFile)
	}
}

func (o *shutdownObs) judgeOrphans(ck *checker) {
	if len(o.left) > 0 {
		var desc []string
		for _, pid := range o.left {
			if info, err := proc.Read(pid); err == nil {
				desc = append(desc, fmt.Sprintf("%d (%s, state %s, parent %d)", pid, info.Comm, info.State, info.PPID))
			}
		}
		ck.Fatalf("after %s, with every connection closed, processes of the server remained: %v", o.how, desc)
	}
}
