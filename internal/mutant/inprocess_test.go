package mutant

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
)

func TestNewRefuses(t *testing.T) {
	cfg := echo.Config{Protocol: echo.Stream}
	for name, why := range map[string]string{
		"no-such-mutant":   "unknown mutant",
		"zombies":          "runs in model [fork]",
		"ignore-sigterm":   "run it with Command",
		"oneshot-no-close": "applies to protocol [oneshot], not stream",
	} {
		_, err := New(name, cfg)
		require.ErrorContains(t, err, why, name)
	}
}

// TestNewLeaksUntilReleased serves the goroutine-leak mutant in process:
// its goroutines outlive Shutdown, and Release ends them. It counts the
// leaked goroutines by their function, not the process's total, which
// other goroutines (the runtime's, the testing package's) move.
func TestNewLeaksUntilReleased(t *testing.T) {
	srv, err := New("goroutine-leak", echo.Config{Protocol: echo.Stream})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Write([]byte("hi"))
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, "hi", string(got))
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.ErrorIs(t, <-served, echo.ErrServerClosed)
	require.Equal(t, 3, leakedGoroutines(), "the leaked goroutines outlive Shutdown")
	srv.Release()
	require.Eventually(t, func() bool { return leakedGoroutines() == 0 }, 5*time.Second, time.Millisecond, "goroutines after Release")
}

// leakedGoroutines counts the goroutines the goroutine-leak fault started.
func leakedGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "mutant.(*server).handle.func1()")
}
