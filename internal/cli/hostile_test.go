package cli

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostile runs one of the misbehaving servers the harness must survive:
// `TEST_BINARY -hostile NAME ADDR`.
func hostile(name, addr string) int {
	if name == "tree-member" {
		depth, _ := strconv.Atoi(addr)
		if depth > 0 {
			spawnSelf("-hostile", "tree-member", strconv.Itoa(depth-1))
		}
		select {}
	}
	if name == "exit-at-once" {
		return 0
	}
	if name == "stubborn-child" && os.Getenv("HOSTILE_CHILD") == "1" {
		signal.Ignore(syscall.SIGTERM)
		select {} // holds the inherited listening socket, forever
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 1
	}
	switch name {
	case "stubborn-child":
		f, _ := ln.(*net.TCPListener).File()
		cmd := exec.Command(os.Args[0], "-hostile", name, addr)
		cmd.Env = append(os.Environ(), "HOSTILE_CHILD=1")
		cmd.ExtraFiles = []*os.File{f}
		_ = cmd.Start()
		f.Close()
	case "deep-tree", "silent-tree":
		spawnSelf("-hostile", "tree-member", "3")
	case "chatty":
		go func() {
			line := bytes.Repeat([]byte("chatty server output "), 50)
			for {
				os.Stdout.Write(line)
				os.Stderr.Write(line)
			}
		}()
	}
	if name == "never-accept" {
		select {}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go serveHostile(name, c.(*net.TCPConn))
	}
}

func spawnSelf(args ...string) {
	cmd := exec.Command(os.Args[0], args...)
	_ = cmd.Start()
}

func serveHostile(name string, c *net.TCPConn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	switch name {
	case "silent", "silent-tree":
		_, _ = io.Copy(io.Discard, c)
	case "flood":
		junk := bytes.Repeat([]byte("flood!"), 10000)
		for {
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
	case "trickle":
		for {
			n, err := c.Read(buf)
			for i := 0; i < n; i++ {
				time.Sleep(time.Second)
				if _, err := c.Write(buf[i : i+1]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case "garbage":
		for {
			n, err := c.Read(buf)
			for i := 0; i < n; i++ {
				buf[i] = byte(r.Uint32())
			}
			if _, werr := c.Write(buf[:n]); werr != nil || err != nil {
				return
			}
		}
	case "chaos":
		limit := r.IntN(4096)
		sent := 0
		for {
			n, err := c.Read(buf)
			if sent+n > limit {
				if r.IntN(2) == 0 {
					_ = c.SetLinger(0)
				}
				_, _ = c.Write(buf[:limit-sent])
				return
			}
			sent += n
			if _, werr := c.Write(buf[:n]); werr != nil || err != nil {
				_ = c.CloseWrite()
				return
			}
		}
	default: // a correct echo: chatty, deep-tree, stubborn-child
		_, _ = io.Copy(c, c)
		_ = c.CloseWrite()
	}
}

// cliProcess runs the CLI as a process of its own: `TEST_BINARY -cli ARGS`.
func cliProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-cli"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd
}

// TestHostileServers: whatever the server does, the run ends within its
// bound with the verdict the server deserves, the harness's memory stays
// bounded, and no process of the server's tree remains.
func TestHostileServers(t *testing.T) {
	if testing.Short() {
		t.Skip("the hostile servers take a minute; run without -short")
	}
	cases := []struct {
		name     string
		code     int      // exit status deserved
		failing  []string // requirements that must FAIL (a subset of what fails)
		passOnly bool     // nothing may fail
	}{
		{name: "never-accept", code: 1, failing: []string{"STREAM-1", "CONC-1"}},
		{name: "silent", code: 1, failing: []string{"STREAM-1", "STREAM-2", "STREAM-3"}},
		{name: "flood", code: 1, failing: []string{"STREAM-1", "STREAM-3"}},
		{name: "trickle", code: 1, failing: []string{"STREAM-2", "STREAM-4"}},
		{name: "garbage", code: 1, failing: []string{"STREAM-1", "STREAM-3"}},
		// chaos cuts every connection before 4096 bytes; STREAM-2 and
		// STREAM-4 always send more than that, STREAM-1's random runs may not.
		{name: "chaos", code: 1, failing: []string{"STREAM-2", "STREAM-4"}},
		{name: "stubborn-child", code: 1, failing: []string{"SHUT-4", "SHUT-7"}},
		{name: "deep-tree", code: 1, failing: []string{"SHUT-7"}},
		{name: "chatty", code: 0, passOnly: true},
		{name: "exit-at-once", code: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			cmd := cliProcess(t, "-time-scale", "0.5", "-checks", "5", "-timeout", "3m",
				"--", os.Args[0], "-hostile", tc.name, "{addr}")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start)
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			t.Logf("%s: exit %d after %v, harness max RSS %d MiB", tc.name, code, took.Round(time.Millisecond), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss>>10)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), tail(stderr.String()))
			require.Less(t, took, 3*time.Minute)
			require.Less(t, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, int64(512<<10), "harness memory bounded (KiB)")
			for _, id := range tc.failing {
				require.Regexp(t, "(?m)^"+id+" +FAIL", stdout.String())
			}
			if tc.passOnly {
				require.Contains(t, stdout.String(), " 0 failed, ")
			}
			require.Empty(t, hostileLeft(t, tc.name), "processes of the server left behind")
		})
	}
}

// hostileLeft lists the live processes of the hostile server name.
func hostileLeft(t *testing.T, name string) []string {
	t.Helper()
	var left []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = left[:0]
		for _, p := range processesWith(t, "-hostile") {
			if strings.Contains(p, name) || strings.Contains(p, "tree-member") {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHarnessKilled: when the harness itself is killed with SIGKILL
// mid-run, no process of the server's tree survives it.
func TestHarnessKilled(t *testing.T) {
	// A server that never replies keeps the harness waiting in STREAM-2
	// (D is 20 s at this time scale) while its tree comes up.
	cmd := cliProcess(t, "-run", "STREAM-2", "-time-scale", "10", "--", os.Args[0], "-hostile", "silent-tree", "{addr}")
	require.NoError(t, cmd.Start())
	// Wait until the server's tree is up: the server and 4 tree members.
	deadline := time.Now().Add(20 * time.Second)
	for len(processesWith(t, "tree-member")) < 4 {
		require.True(t, time.Now().Before(deadline), "the tree never came up")
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Empty(t, hostileLeft(t, "silent-tree"), "processes of the server outlived the harness")
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
