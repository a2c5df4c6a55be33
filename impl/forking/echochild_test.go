package forking_test

import (
	"debug/elf"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/internal/impltest"
)

// TestEchochild runs the forking reference with cmd/echochild as its child
// program, and checks that echochild is a static binary: what makes it
// start faster than the server's own binary.
func TestEchochild(t *testing.T) {
	child := impltest.BuildEchochild(t)
	f, err := elf.Open(child)
	require.NoError(t, err)
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "echochild is dynamically linked: something it imports brought in cgo")
	}
	f.Close()
	require.NoError(t, forking.CheckChild(child))
	require.ErrorContains(t, forking.CheckChild(t.TempDir()), "not an executable file")
	require.Error(t, forking.CheckChild(child+".missing"))

	m := echochildModel(child)
	if testing.Short() {
		// Each protocol once; the rest is the same server code as the
		// tests of the self-executing children run.
		t.Run("Interactive", func(t *testing.T) { impltest.Interactive(t, m) })
		t.Run("Oneshot", func(t *testing.T) { impltest.Oneshot(t, m) })
		t.Run("Line", func(t *testing.T) { impltest.Line(t, m) })
		t.Log("-short: leaves out StreamExact, HalfClose, PIDs and Concurrent64 with echochild")
		return
	}
	t.Run("StreamExact", func(t *testing.T) { impltest.StreamExact(t, m) })
	t.Run("HalfClose", func(t *testing.T) { impltest.HalfClose(t, m) })
	t.Run("Interactive", func(t *testing.T) { impltest.Interactive(t, m) })
	t.Run("Oneshot", func(t *testing.T) { impltest.Oneshot(t, m) })
	t.Run("Line", func(t *testing.T) { impltest.Line(t, m) })
	t.Run("PIDs", func(t *testing.T) { impltest.PIDs(t, m) })
	t.Run("Concurrent64", func(t *testing.T) { impltest.Concurrent(t, m, 64) })
}

// echochildModel is the forking reference with cmd/echochild as its
// children's program, as echoserver runs it.
func echochildModel(child string) impltest.Model {
	return impltest.Model{Fork: true, New: func(cfg echo.Config) impltest.Server {
		s := forking.New(cfg)
		s.Child = child
		return s
	}}
}
