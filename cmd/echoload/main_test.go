package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/threading"
	"github.com/echoconform/echoconform/internal/testserver"
)

// envServe makes the test binary a threading echo server on $PORT (launch
// mode's test): it exits 0 on SIGTERM.
const envServe = "ECHOLOAD_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) != "" {
		os.Exit(testserver.ServePORT(threading.New(echo.Config{Prefix: echo.MustParseTemplate("{pid}: ")})))
	}
	goleak.VerifyTestMain(m)
}

func startThreading(t *testing.T, cfg echo.Config) string {
	t.Helper()
	return testserver.Serve(t, threading.New(cfg))
}

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestBadInput tests that bad input exits 2 with one line.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "nothing to load"},
		{[]string{"-clients", "x", "-addr", "127.0.0.1:7"}, "invalid value"},
		{[]string{"-nosuchflag"}, "not defined"},
		{[]string{"-addr", "10.0.0.1:7"}, "not on loopback"},
		{[]string{"-addr", "127.0.0.1:7", "-mode", "stream", "-protocol", "oneshot"}, "stream mode needs"},
		{[]string{"-addr", "127.0.0.1:7", "-mode", "burst"}, "unknown mode"},
		{[]string{"-addr", "127.0.0.1:7", "-protocol", "udp"}, "unknown protocol"},
		{[]string{"-addr", "127.0.0.1:7", "-prefix", "{name}"}, "unknown placeholder"},
		{[]string{"-addr", "127.0.0.1:7", "-clients", "0"}, "-clients"},
		{[]string{"-addr", "127.0.0.1:7", "-duration", "0"}, "unbounded"},
		{[]string{"-addr", "127.0.0.1:7", "--", "true"}, "not both"},
		{[]string{"-duration", "1s", "--", "/no/such/server", "{port}"}, "no such file"},
		{[]string{"-duration", "1s", "--", "/bin/false"}, "exited"},
	} {
		code, stdout, stderr := runArgs(tc.args...)
		require.Equal(t, 2, code, "%q: stderr %q", tc.args, stderr)
		require.Empty(t, stdout, "%q", tc.args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "%q: one line, got %q", tc.args, stderr)
		require.Contains(t, stderr, tc.want, "%q", tc.args)
	}
	code, stdout, _ := runArgs("-h")
	require.Zero(t, code)
	require.Contains(t, stdout, "usage:")
	require.Contains(t, stdout, "-clients")
}

func TestRun(t *testing.T) {
	addr := startThreading(t, echo.Config{Prefix: echo.MustParseTemplate("{pid}: ")})
	code, stdout, stderr := runArgs("-addr", addr, "-clients", "3", "-count", "60", "-duration", "0", "-prefix", "{pid}: ")
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "60 exchanges")
	require.Contains(t, stdout, "every byte verified")

	code, stdout, stderr = runArgs("-addr", addr, "-mode", "stream", "-bytes", "1000000", "-duration", "0", "-prefix", "{pid}: ", "-json")
	require.Zero(t, code, stderr)
	var j jsonResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &j))
	require.EqualValues(t, 1000000, j.BytesVerified)
	require.Equal(t, "stream", j.Mode)
	require.Positive(t, j.MBPerSec)
	require.Empty(t, j.Error)
}

// TestServerFails tests that a reply that differs from the echo exits 1.
func TestServerFails(t *testing.T) {
	addr := startThreading(t, echo.Config{Prefix: echo.MustParseTemplate("[{pid}] ")})
	code, stdout, stderr := runArgs("-addr", addr, "-count", "5", "-duration", "0", "-prefix", "{pid}: ")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "until the failure")
	require.Contains(t, stderr, "FAIL")
	require.Contains(t, stderr, "prefix mismatch")
}

// TestLaunchMode tests that a command is started, loaded and stopped.
func TestLaunchMode(t *testing.T) {
	t.Setenv(envServe, "1")
	code, stdout, stderr := runArgs("-count", "20", "-duration", "0", "-prefix", "{pid}: ", "--", os.Args[0], "-test.run=^$", "{addr}")
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "20 exchanges")
}
