package impltest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// BuildEchochild builds cmd/echochild as the go command builds it by default
// (cgo enabled where a C compiler is) and returns its path.
func BuildEchochild(tb testing.TB) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	require.NoError(tb, err, "building cmd/echochild needs the go command")
	path := filepath.Join(tb.TempDir(), "echochild")
	out, err := exec.Command(gobin, "build", "-o", path, "github.com/echoconform/echoconform/cmd/echochild").CombinedOutput()
	require.NoError(tb, err, "go build cmd/echochild: %s", out)
	return path
}
