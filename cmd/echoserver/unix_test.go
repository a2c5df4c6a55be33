package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/internal/testbin"
)

const bound = 30 * time.Second // a hang guard for every wait

// server is an echoserver started by a test.
type server struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	pid    int    // from the "listening" line
	where  string // the address the "listening" line shows
}

// startServer starts bin/echoserver with args and waits for its
// "listening" line; a cleanup kills it if the test did not wait for it.
func startServer(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin+"/echoserver", args...)
	cmd.WaitDelay = bound
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n') // the context bounds it
	require.NoError(t, err, "stderr: %s", &stderr)
	m := regexp.MustCompile(`listening on (\S+) \(pid (\d+)\)`).FindStringSubmatch(line)
	require.NotNil(t, m, "first line %q", line)
	pid, _ := strconv.Atoi(m[2])
	return &server{cmd: cmd, stderr: &stderr, pid: pid, where: m[1]}
}

// stop sends SIGTERM and expects exit status 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, s.cmd.Wait(), "exit status after SIGTERM; stderr: %s", s.stderr)
}

// refused runs bin/echoserver with args and expects exit status 2 and one
// line on stderr matching want.
func refused(t *testing.T, bin string, want *regexp.Regexp, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin+"/echoserver", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "echoserver %v: stdout %q", args, out)
	require.Equal(t, 2, exit.ExitCode(), "stderr: %s", &stderr)
	require.Empty(t, out, "stdout")
	require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line on stderr: %q", &stderr)
	require.Regexp(t, want, stderr.String())
}

// sockPath returns a path for a socket in a new temporary directory: short,
// for sun_path's 108 bytes.
func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ec")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// exchange sends msg over a new connection to path, half-closes and
// returns the reply up to EOF.
func exchange(t *testing.T, path, msg string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", path, bound)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(bound)))
	_, err = c.Write([]byte(msg))
	require.NoError(t, err)
	require.NoError(t, c.(*net.UnixConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	return string(got)
}

func requireGone(t *testing.T, path string) {
	t.Helper()
	_, err := os.Lstat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "the socket file after the server exited")
}

// TestUnix runs `echoserver -addr unix:PATH` for every model and protocol:
// it listens on the path, echoes with the {pid} of its model, exits 0 on
// SIGTERM and leaves no socket file.
func TestUnix(t *testing.T) {
	bin := testbin.Build(t, false, "github.com/echoconform/echoconform/cmd/echoserver", "github.com/echoconform/echoconform/cmd/echochild")
	for _, model := range []string{"thread", "fork", "event"} {
		for _, p := range []struct{ protocol, send, want string }{
			{"stream", "hello", "hello"},
			{"line", "one\ntwo", "one\ntwo"},
			{"oneshot", "a message", "a message"},
		} {
			t.Run(model+"/"+p.protocol, func(t *testing.T) {
				path := sockPath(t)
				s := startServer(t, bin, "-model", model, "-protocol", p.protocol, "-prefix", "{pid}/{ppid}: ", "-addr", "unix:"+path)
				require.Equal(t, "unix:"+path, s.where)
				st, err := os.Lstat(path)
				require.NoError(t, err)
				require.Equal(t, fs.ModeSocket, st.Mode().Type())

				got := exchange(t, path, p.send)
				m := regexp.MustCompile(`^(\d+)/(\d+): `).FindStringSubmatch(got)
				require.NotNil(t, m, "reply %q", got)
				want := fmt.Sprintf("%d/%d: ", s.pid, os.Getpid()) // the server's pid and ppid
				if model == "fork" {
					// a child's: its own pid, the server's as its ppid
					require.NotEqual(t, strconv.Itoa(s.pid), m[1], "fork: {pid} is the server's")
					want = fmt.Sprintf("%s/%d: ", m[1], s.pid)
				}
				require.Equal(t, want+p.want, got)

				s.stop(t)
				requireGone(t, path)
			})
		}
	}
}

// TestUnixExisting runs `echoserver -addr unix:PATH` where a file is
// already at the path: a stale socket file is replaced, a socket a server
// listens on and a file that is no socket are refused (exit status 2, one
// line) and left alone.
func TestUnixExisting(t *testing.T) {
	bin := testbin.Build(t, false, "github.com/echoconform/echoconform/cmd/echoserver")
	t.Run("stale", func(t *testing.T) {
		path := sockPath(t)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		require.NoError(t, err)
		ln.SetUnlinkOnClose(false)
		require.NoError(t, ln.Close()) // a server that died: the file stays
		_, err = net.Dial("unix", path)
		require.ErrorIs(t, err, syscall.ECONNREFUSED, "the stale socket file")

		s := startServer(t, bin, "-addr", "unix:"+path)
		require.Equal(t, "hello", exchange(t, path, "hello"))
		s.stop(t)
		requireGone(t, path)
	})
	t.Run("in-use", func(t *testing.T) {
		path := sockPath(t)
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		defer ln.Close()
		refused(t, bin, regexp.MustCompile(`^echoserver: listen unix `+regexp.QuoteMeta(path)+`: address in use`), "-addr", "unix:"+path)
		// Still there, and still the first server's.
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			accepted <- err
		}()
		c, err := net.DialTimeout("unix", path, bound)
		require.NoError(t, err, "the first server's socket after echoserver refused it")
		c.Close()
		require.NoError(t, <-accepted)
	})
	t.Run("not-a-socket", func(t *testing.T) {
		path := sockPath(t)
		require.NoError(t, os.WriteFile(path, []byte("not a socket\n"), 0o600))
		refused(t, bin, regexp.MustCompile(`^echoserver: listen unix `+regexp.QuoteMeta(path)+`: exists and is not a socket`), "-addr", "unix:"+path)
		b, err := os.ReadFile(path)
		require.NoError(t, err, "the file echoserver refused")
		require.Equal(t, "not a socket\n", string(b))
	})
	t.Run("directory", func(t *testing.T) {
		path := sockPath(t)
		require.NoError(t, os.Mkdir(path, 0o700))
		refused(t, bin, regexp.MustCompile(`exists and is not a socket`), "-addr", "unix:"+path)
		require.DirExists(t, path)
	})
	t.Run("replaced", func(t *testing.T) {
		// Someone removes the file of a running echoserver and another
		// server binds the path: at its shutdown, echoserver leaves the
		// other server's file alone.
		path := sockPath(t)
		s := startServer(t, bin, "-addr", "unix:"+path)
		require.NoError(t, os.Remove(path))
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		defer ln.Close()
		s.stop(t)
		st, err := os.Lstat(path)
		require.NoError(t, err, "the other server's socket file after echoserver exited")
		require.Equal(t, fs.ModeSocket, st.Mode().Type())
	})
}
