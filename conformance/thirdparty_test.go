package conformance_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/echo"
)

// need returns the path of tool, or skips the test naming the Debian
// package to install; with ECHOCONFORM_REQUIRE_TOOLS=1 (as in CI) a
// missing tool fails instead, so that CI never skips a server silently.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("ECHOCONFORM_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found; install the Debian package %s", tool, pkg)
	}
	t.Skipf("%s not found; install the Debian package %s to check this server", tool, pkg)
	return ""
}

// verdicts runs the suite and returns ID → verdict.
func verdicts(t *testing.T, target conformance.Target, opts ...conformance.Option) map[string]conformance.Verdict {
	t.Helper()
	rep, err := conformance.Check(context.Background(), target, opts...)
	require.NoError(t, err)
	out := map[string]conformance.Verdict{}
	for _, r := range rep.Results {
		out[r.ID] = r.Verdict
		t.Logf("%-10s %-5s %v", r.ID, r.Verdict, r.Duration)
		if r.Verdict == conformance.Fail {
			t.Logf("%s", conformance.FormatResult(r))
		}
	}
	return out
}

func failed(v map[string]conformance.Verdict) []string {
	var ids []string
	for id, verdict := range v {
		if verdict == conformance.Fail {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestSeedPythonServer(t *testing.T) {
	py := need(t, "python3", "python3")
	target := conformance.Command(py, "../testdata/servers/seed_forking.py", "{port}")
	v := verdicts(t, target,
		conformance.ExpectProtocol(echo.Oneshot),
		conformance.ExpectPrefix(echo.MustParseTemplate("{ppid} :")),
		conformance.ExpectModel(conformance.ModelFork))
	t.Logf("failed: %s", strings.Join(failed(v), " "))
	require.Equal(t, conformance.Fail, v["ONESHOT-4"])
}
