package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/internal/testbin"
)

// TestModelEvent runs `echoserver -model event` for each protocol: it
// listens, echoes with the server's {pid}, and exits 0 after SIGTERM.
func TestModelEvent(t *testing.T) {
	bin := testbin.Build(t, false, "github.com/echoconform/echoconform/cmd/echoserver")
	const bound = 30 * time.Second // a hang guard for every wait
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+) \(pid (\d+)\)`)
	for _, p := range []struct{ protocol, send, want string }{
		{"stream", "hello", "hello"},
		{"line", "one\ntwo", "one\ntwo"},
		{"oneshot", "a message", "a message"},
	} {
		t.Run(p.protocol, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin+"/echoserver", "-model", "event", "-protocol", p.protocol, "-prefix", "{pid}: ", "-addr", "127.0.0.1:0")
			cmd.WaitDelay = bound
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			waited := false
			defer func() {
				if !waited {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}()
			line, err := bufio.NewReader(out).ReadString('\n') // the context bounds it
			require.NoError(t, err)
			m := listening.FindStringSubmatch(line)
			require.NotNil(t, m, "first line %q", line)

			c, err := net.DialTimeout("tcp", m[1], bound)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(bound)))
			_, err = c.Write([]byte(p.send))
			require.NoError(t, err)
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("%s: %s", m[2], p.want), string(got))

			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			waited = true
			require.NoError(t, cmd.Wait(), "exit status after SIGTERM")
		})
	}
}
