package proc

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)

// within runs f and fails the test if it does not return in time, so that
// no blocking wait in a test can hang the suite.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Errorf("%s did not finish within %v", what, waitFor)
	}
}

// startGroup starts sh -c script in its own process group and registers a
// cleanup that kills the group, waits for sh and reaps any of its children
// that were reparented to us (when the test binary is a subreaper).
func startGroup(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		kids, _ := Descendants(pid)
		require.NoError(t, KillGroup(unix.SIGKILL, pid))
		Kill(unix.SIGKILL, kids...)
		within(t, "sh wait", func() { _ = cmd.Wait() })
		within(t, "reap orphans", func() { Reap(kids...) })
	})
	return cmd
}

func TestReadSelf(t *testing.T) {
	info, err := Read(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), info.PID)
	require.Equal(t, os.Getppid(), info.PPID)
	require.Equal(t, syscall.Getpgrp(), info.PGID)
	require.Positive(t, info.FDs)
	require.GreaterOrEqual(t, info.Threads, 1)
	require.Positive(t, info.RSS)
	require.Contains(t, []string{"R", "S"}, info.State)
	require.NotEmpty(t, info.Comm)
}

func TestReadVanished(t *testing.T) {
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Run())
	_, err := Read(cmd.Process.Pid)
	require.Error(t, err)
	require.True(t, errors.Is(err, os.ErrNotExist), "got %v", err)

	_, err = Children(cmd.Process.Pid)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestChildrenDescendants(t *testing.T) {
	cmd := startGroup(t, "sleep 30 & sleep 30 & wait")
	sh := cmd.Process.Pid

	var kids []int
	require.Eventually(t, func() bool {
		var err error
		kids, err = Children(sh)
		require.NoError(t, err)
		if len(kids) != 2 {
			return false
		}
		for _, k := range kids { // forked but not yet exec'd shows comm "sh"
			if info, err := Read(k); err != nil || info.Comm != "sleep" {
				return false
			}
		}
		return true
	}, waitFor, tick)
	require.True(t, slices.IsSorted(kids))
	for _, k := range kids {
		info, err := Read(k)
		require.NoError(t, err)
		require.Equal(t, sh, info.PPID)
		require.Equal(t, sh, info.PGID)
	}

	mine, err := Children(os.Getpid())
	require.NoError(t, err)
	require.Contains(t, mine, sh)

	desc, err := Descendants(sh)
	require.NoError(t, err)
	require.Equal(t, kids, desc)

	desc, err = Descendants(os.Getpid())
	require.NoError(t, err)
	require.NotContains(t, desc, os.Getpid())
	i := slices.Index(desc, sh)
	require.GreaterOrEqual(t, i, 0)
	for _, k := range kids { // breadth-first: grandchildren after their parent
		j := slices.Index(desc, k)
		require.Greater(t, j, i)
	}

	z, err := Zombies(sh)
	require.NoError(t, err)
	require.Empty(t, z)
}

func TestChildrenByScanMatches(t *testing.T) {
	cmd := startGroup(t, "sleep 30 & wait")
	sh := cmd.Process.Pid
	require.Eventually(t, func() bool {
		kids, err := Children(sh)
		return err == nil && len(kids) == 1
	}, waitFor, tick)
	a, err := Children(sh)
	require.NoError(t, err)
	b, err := childrenByScan(sh)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func TestZombies(t *testing.T) {
	// syscall.ForkExec, not os/exec: no goroutine waits for this child, so
	// it stays a zombie until we reap it.
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	require.NoError(t, err)
	t.Cleanup(func() {
		Kill(unix.SIGKILL, pid)
		within(t, "reap", func() { Reap(pid) })
	})

	require.Eventually(t, func() bool {
		z, err := Zombies(os.Getpid())
		require.NoError(t, err)
		return slices.Contains(z, pid)
	}, waitFor, tick)
	info, err := Read(pid)
	require.NoError(t, err)
	require.Equal(t, "Z", info.State)
	require.Equal(t, os.Getpid(), info.PPID)

	require.Equal(t, []int{pid}, ReapZombies(pid, -1, 0, 1))
	require.Empty(t, ReapZombies(pid), "already reaped")
	_, err = Read(pid)
	require.ErrorIs(t, err, os.ErrNotExist)
	z, err := Zombies(os.Getpid())
	require.NoError(t, err)
	require.NotContains(t, z, pid)
}

func TestReapBlocking(t *testing.T) {
	pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "30"}, &syscall.ProcAttr{})
	require.NoError(t, err)
	t.Cleanup(func() {
		Kill(unix.SIGKILL, pid)
		within(t, "reap", func() { Reap(pid) })
	})
	require.Empty(t, ReapZombies(pid), "still running")
	Kill(unix.SIGKILL, pid)
	within(t, "reap", func() { Reap(pid, os.Getppid(), 0, -1) }) // not ours: ignored
	_, err = Read(pid)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func checkListener(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	ok, err := IsListening(port)
	require.NoError(t, err)
	require.True(t, ok)
	inodes, err := ListenerInodes(port)
	require.NoError(t, err)
	require.Len(t, inodes, 1)
	pids, err := ListenerPIDs(port)
	require.NoError(t, err)
	require.Contains(t, pids, os.Getpid())
	require.True(t, slices.IsSorted(pids))
}

func TestListenerLoopback(t *testing.T) { checkListener(t, "127.0.0.1:0") }

func TestListenerDualStack(t *testing.T) { checkListener(t, ":0") }

func TestListenerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	ok, err := IsListening(port)
	require.NoError(t, err)
	require.False(t, ok)
	pids, err := ListenerPIDs(port)
	require.NoError(t, err)
	require.Empty(t, pids)
}

func TestKillGroupRefusesDangerousGroups(t *testing.T) {
	for _, pgid := range []int{-1, 0, 1, syscall.Getpgrp()} {
		require.Error(t, KillGroup(0, pgid), "pgid %d", pgid)
	}
}

func TestSubreaper(t *testing.T) {
	// Process-wide and irreversible in practice; fine inside the test binary.
	require.NoError(t, SetChildSubreaper())
	require.NoError(t, SetChildSubreaper(), "idempotent")
	on, err := IsChildSubreaper()
	require.NoError(t, err)
	require.True(t, on)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// The redirect keeps sleep off the stdout pipe, so Output returns when
	// sh exits rather than when sleep closes the pipe.
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $!")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	out, err := cmd.Output() // returns after sh has exited and been waited
	require.NoError(t, err)
	gc, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	t.Cleanup(func() {
		Kill(unix.SIGKILL, gc)
		within(t, "reap grandchild", func() { Reap(gc) })
	})

	require.Eventually(t, func() bool {
		info, err := Read(gc)
		return err == nil && info.PPID == os.Getpid()
	}, waitFor, tick)
	kids, err := Children(os.Getpid())
	require.NoError(t, err)
	require.Contains(t, kids, gc)

	Kill(unix.SIGKILL, gc)
	within(t, "reap grandchild", func() { Reap(gc) })
	_, err = Read(gc)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestAccepted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	sport := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	cport := c.LocalAddr().(*net.TCPAddr).Port
	ok, err := Accepted(sport, cport)
	require.NoError(t, err)
	require.False(t, ok, "a connection in the backlog is not accepted yet")
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	ok, err = Accepted(sport, cport)
	require.NoError(t, err)
	require.True(t, ok)
}

// TestRunnable tests that a process spinning on the CPU is runnable and a
// sleeping one is not.
func TestRunnable(t *testing.T) {
	spin := startGroup(t, "while :; do :; done")
	require.Eventually(t, func() bool { return Runnable(spin.Process.Pid) }, waitFor, time.Millisecond)
	sleeper := startGroup(t, "exec sleep 60")
	require.Eventually(t, func() bool { return !Runnable(sleeper.Process.Pid) }, waitFor, time.Millisecond)
	require.True(t, Runnable(spin.Process.Pid, sleeper.Process.Pid), "one of them spins")
	require.False(t, Runnable(), "no process")
}
