package proc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	within(t, "exited", func() { <-ch })
}

func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		within(t, "sleep wait", func() { _ = cmd.Wait() })
	})
	return cmd
}

func TestWatchExitChild(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cmd := sleeper(t)
	exited, stop, err := WatchExit(cmd.Process.Pid)
	require.NoError(t, err)
	defer stop()
	require.False(t, closed(exited), "sleep 30 runs")
	require.NoError(t, cmd.Process.Kill())
	waitClosed(t, exited) // a zombie now: nobody has waited for it yet
	info, err := Read(cmd.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, "Z", info.State)
	within(t, "sleep wait", func() { _ = cmd.Wait() })
	stop()
	stop() // idempotent
}

// TestWatchExitStop leaves the process running: stop must release the
// goroutine and the pidfd, and not report an exit.
func TestWatchExitStop(t *testing.T) {
	cmd := sleeper(t)
	before := pidfds(t)
	ignore := goleak.IgnoreCurrent()
	exited, stop, err := WatchExit(cmd.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, before+1, pidfds(t))
	within(t, "stop", stop)
	goleak.VerifyNone(t, ignore)
	require.False(t, closed(exited))
	require.Equal(t, before, pidfds(t), "pidfd closed")
}

// pidfds counts our descriptors that are pidfds (os/exec holds some too).
func pidfds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[pidfd]" {
			n++
		}
	}
	return n
}

// TestWatchExitNotChild watches a grandchild, which only its parent sh
// can wait for.
func TestWatchExitNotChild(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sh := startGroup(t, "sleep 30 & wait").Process.Pid
	var kid int
	require.Eventually(t, func() bool {
		kids, err := Children(sh)
		if err != nil || len(kids) != 1 {
			return false
		}
		info, err := Read(kids[0])
		kid = kids[0]
		return err == nil && info.Comm == "sleep"
	}, waitFor, tick)
	exited, stop, err := WatchExit(kid)
	require.NoError(t, err)
	defer stop()
	require.False(t, closed(exited))
	Kill(unix.SIGKILL, kid)
	waitClosed(t, exited)
}

func TestWatchExitGone(t *testing.T) {
	// pid_max itself is never a pid (pids are below it).
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	require.NoError(t, err)
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	exited, stop, err := WatchExit(pidMax)
	require.NoError(t, err)
	require.True(t, closed(exited))
	stop()

	_, _, err = WatchExit(0)
	require.Error(t, err)
}
