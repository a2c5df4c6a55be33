package mutant

import (
	"context"
	"io"
	"net"
	"runtime"
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
// its goroutines outlive Shutdown, and Release ends them.
func TestNewLeaksUntilReleased(t *testing.T) {
	before := runtime.NumGoroutine()
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
	require.GreaterOrEqual(t, runtime.NumGoroutine(), before+3, "the leaked goroutines outlive Shutdown")
	srv.Release()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines after Release")
}
