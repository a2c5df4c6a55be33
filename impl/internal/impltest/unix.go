package impltest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
)

// UnixSuite runs the shared tests of m over a Unix-domain stream socket
// (issue 14): the echo of each protocol, the PIDs, concurrency and
// shutdown tests, and that the socket file goes when the server stops.
// Each is a subtest named as the TCP test it repeats.
func UnixSuite(t *testing.T, m Model) {
	m = m.OverUnix()
	for _, c := range []struct {
		name string
		run  func(*testing.T, Model)
	}{
		{"StreamExact", StreamExact},
		{"HalfClose", HalfClose},
		{"Interactive", Interactive},
		{"Oneshot", Oneshot},
		{"Line", Line},
		{"PIDs", PIDs},
		{"Concurrent64", func(t *testing.T, m Model) { Concurrent(t, m, 64) }},
		{"ShutdownGraceful", ShutdownGraceful},
		{"ShutdownExpired", ShutdownExpired},
		{"Leaks50", func(t *testing.T, m Model) { Leaks(t, m, 50) }},
		{"SocketRemoved", SocketRemoved},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, m) })
	}
}

var errHang = errors.New("hang guard: Shutdown did not return within Timeout")

// SocketRemoved tests that a server on a Unix socket removes its socket
// file when it stops, by Close as by Shutdown, and not before: the file
// is there while the server serves.
func SocketRemoved(t *testing.T, m Model) {
	require.True(t, m.Unix, "SocketRemoved needs a model over Unix")
	for _, stop := range []struct {
		name string
		stop func(*Running) error
	}{
		{"Close", func(r *Running) error { return r.Server.Close() }},
		{"Shutdown", func(r *Running) error {
			select {
			case err := <-r.Shutdown(t.Context()):
				return err
			case <-time.After(Timeout):
				return errHang
			}
		}},
	} {
		t.Run(stop.name, func(t *testing.T) {
			VerifyNone(t)
			r := Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: Prefix})
			c := r.Dial(t)
			m.CheckValues(t, ExpectReply(t, c, Prefix, []byte("served")))
			ExpectEOF(t, c)
			require.NoError(t, c.Close())
			// Served, and still listening: the file is still there.
			ServedNow(t, r, m)
			require.FileExists(t, r.Addr)
			require.NoError(t, stop.stop(r))
			require.ErrorIs(t, r.ServeErr(t), echo.ErrServerClosed)
			r.RequireSocketGone(t)
			require.True(t, r.Refused(t), "a connection after the server stopped")
		})
	}
}
