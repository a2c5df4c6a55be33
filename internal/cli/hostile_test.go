package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/internal/proc"
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
	if name == "daemon" {
		// Daemonizes: a detached child (a session of its own) listens and
		// serves a correct echo; this first process exits 0 at once.
		cmd := exec.Command(os.Args[0], "-hostile", "daemon-child", addr)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return 1
		}
		return 0
	}
	if name == "stubborn-child" && os.Getenv("HOSTILE_CHILD") == "1" {
		signal.Ignore(syscall.SIGTERM)
		select {} // holds the inherited listening socket, forever
	}
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix" // {sock}: a Unix-domain socket's path
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return 1
	}
	switch name {
	case "stubborn-child":
		f, _ := ln.(interface{ File() (*os.File, error) }).File()
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
	if name == "exit-after-first" {
		// Serves its first connection, a correct echo to EOF, then exits 0.
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		_, _ = io.Copy(c, c)
		c.Close()
		return 0
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go serveHostile(name, c.(hostileConn))
	}
}

func spawnSelf(args ...string) {
	cmd := exec.Command(os.Args[0], args...)
	_ = cmd.Start()
}

// hostileConn is a TCP or Unix connection.
type hostileConn interface {
	net.Conn
	CloseWrite() error
}

func serveHostile(name string, c hostileConn) {
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
					if l, ok := c.(*net.TCPConn); ok {
						_ = l.SetLinger(0)
					}
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
	default: // a correct echo: chatty, deep-tree, stubborn-child, daemon-child
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
		t.Skip("-short: the hostile servers (a minute and more) are left out")
	}
	cases := []struct {
		name     string
		code     int      // exit status deserved
		failing  []string // requirements that must FAIL (a subset of what fails)
		passOnly bool     // nothing may fail
	}{
		{name: "never-accept", code: 1, failing: []string{"STREAM-1", "CONC-1", "ALIVE-1"}},
		{name: "silent", code: 1, failing: []string{"STREAM-1", "STREAM-2", "STREAM-3"}}, // it accepts: alive (ALIVE-1 passes)
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
			code, stdout, stderr, took := runHostile(t, tc.name, "-time-scale", "0.5", "-checks", "5", "-timeout", "3m")
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, tail(stderr))
			require.Less(t, took, 3*time.Minute)
			for _, id := range tc.failing {
				require.Regexp(t, "(?m)^"+id+" +FAIL", stdout)
			}
			if tc.passOnly {
				require.Contains(t, stdout, " 0 failed, ")
			}
			require.Empty(t, hostileLeft(t, tc.name), "processes of the server left behind")
		})
	}
}

// runHostile runs the CLI, as a process of its own, with args on the
// hostile server name, and returns its exit status, output and wall time.
// The harness's memory must stay bounded.
func runHostile(t *testing.T, name string, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cliProcess(t, append(args, "--", os.Args[0], "-hostile", name, "{addr}")...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	maxRSS := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
	t.Logf("%s: exit %d after %v, harness max RSS %d MiB", name, code, took.Round(time.Millisecond), maxRSS>>10)
	require.Less(t, maxRSS, int64(512<<10), "harness memory bounded (KiB)")
	return code, out.String(), errOut.String(), took
}

// TestDaemonizingServer: a command that exits 0 at once, leaving a
// detached child (a session of its own) that listens, is followed to that
// child: it is checked, and stopped, like any server.
func TestDaemonizingServer(t *testing.T) {
	ids := "STREAM|CONC-1"
	if testing.Short() {
		ids = "STREAM-[23]|CONC-1" // -short: STREAM-1's 8 MiB cases and STREAM-4 left out
	}
	code, stdout, stderr, _ := runHostile(t, "daemon", "-run", ids)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, tail(stderr))
	require.Regexp(t, "(?m)^STREAM-2 +PASS", stdout)
	require.Regexp(t, "(?m)^CONC-1 +PASS", stdout)
	require.Contains(t, stdout, " 0 failed, ")
	require.Empty(t, hostileLeft(t, "daemon"), "processes of the server left behind")
}

// TestServerDiesAfterFirstConnection: a server that exits once it has
// served one connection makes every check that needs a second one fail,
// quickly, saying that the server died, and fails ALIVE-1.
func TestServerDiesAfterFirstConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the full run on a server that dies after its first connection (several seconds) is left out")
	}
	code, stdout, stderr, took := runHostile(t, "exit-after-first", "-json", "-time-scale", "0.5")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, tail(stderr))
	// A correct harness notices each death at once: a bound several times
	// what it needs.
	require.Less(t, took, 30*time.Second, "a full run on a server that dies")
	var rep struct {
		Reports []struct {
			Results []struct{ ID, Verdict, Message string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.Len(t, rep.Reports, 1)
	// The checks that hold their first connection open to their end find
	// the server alive and stuck on it (it is serial): it exits once the
	// check is over, and ALIVE-1 names those checks. The shutdown checks
	// end the server themselves (SIGTERM, which this server does not
	// handle) and are judged on that. Every other failing check gave the
	// server a second connection after the first: it died during the check,
	// and the message says so.
	heldOpen := map[string]bool{"CONC-1": true, "CONC-2": true, "ROBUST-1": true, "ROBUST-2": true, "ROBUST-3": true}
	results := map[string]struct{ Verdict, Message string }{}
	for _, r := range rep.Reports[0].Results {
		results[r.ID] = struct{ Verdict, Message string }{r.Verdict, r.Message}
	}
	alive := results["ALIVE-1"]
	require.Equal(t, "FAIL", alive.Verdict)
	require.Equal(t, "FAIL", results["STREAM-1"].Verdict)
	var unnamed []string
	for _, r := range rep.Reports[0].Results {
		switch {
		case r.Verdict != "FAIL" || r.ID == "ALIVE-1" || strings.HasPrefix(r.ID, "SHUT-"):
		case heldOpen[r.ID]:
			require.Regexp(t, "(?m)^"+r.ID+": ", alive.Message, "ALIVE-1 does not name %s", r.ID)
		case !regexp.MustCompile("the server died|had died").MatchString(r.Message):
			unnamed = append(unnamed, r.ID+": "+r.Message)
		}
	}
	require.Empty(t, unnamed, "failures that do not name the server's death:\n%s", strings.Join(unnamed, "\n"))
	require.Empty(t, hostileLeft(t, "exit-after-first"), "processes of the server left behind")
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
// mid-run, no process of the server's tree survives it, over TCP and over
// a Unix-domain socket, whose private directory and socket file go too.
func TestHarnessKilled(t *testing.T) {
	for _, tc := range []struct{ transport, placeholder string }{{"tcp", "{addr}"}, {"unix", "{sock}"}} {
		t.Run(tc.transport, func(t *testing.T) { harnessKilled(t, tc.placeholder) })
	}
}

func harnessKilled(t *testing.T, placeholder string) {
	// A server that never replies keeps the harness waiting in STREAM-2
	// (D is 20 s at this time scale) while its tree comes up.
	before, err := proc.Children(os.Getpid())
	require.NoError(t, err)
	// The harness's temporary directory: where it makes the socket's.
	tmp := t.TempDir()
	cmd := cliProcess(t, "-run", "STREAM-2", "-time-scale", "10", "--", os.Args[0], "-hostile", "silent-tree", placeholder)
	// The harness supervises its servers as a user's does: the program
	// started again, not the tests' echosupervise (testbin.Supervisor).
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "ECHOCONFORM_SUPERVISOR=") }), "TMPDIR="+tmp)
	require.NoError(t, cmd.Start())
	// Wait until the server's tree is up: the server and 4 tree members.
	deadline := time.Now().Add(20 * time.Second)
	for len(processesWith(t, "tree-member")) < 4 {
		require.True(t, time.Now().Before(deadline), "the tree never came up")
		time.Sleep(10 * time.Millisecond)
	}
	made, _ := filepath.Glob(filepath.Join(tmp, "*", "*"))
	if placeholder == "{sock}" {
		require.Len(t, made, 1, "the server's socket in its private directory")
		fi, err := os.Lstat(made[0])
		require.NoError(t, err)
		require.Equal(t, os.ModeSocket, fi.Mode().Type(), "%s", made[0])
		di, err := os.Stat(filepath.Dir(made[0]))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "the socket's directory is private")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Empty(t, hostileLeft(t, "silent-tree"), "processes of the server outlived the harness")
	// The harness's supervisor, orphaned by the kill, comes to this
	// process once it is a subreaper (any test that started a command
	// made it one): reap it when it has ended its tree, so that no zombie
	// of this test is left for a later in-process LEAK-1 to find.
	require.Eventually(t, func() bool {
		kids, err := proc.Children(os.Getpid())
		if err != nil {
			return false
		}
		for _, pid := range kids {
			if slices.Contains(before, pid) {
				continue
			}
			if len(proc.ReapZombies(pid)) == 0 {
				return false // still running: its supervisor ends the tree first
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "the killed harness's orphans did not end")
	// The supervisor removed the socket's directory once the tree was gone.
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, left, "files the killed harness made outlived it")
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
