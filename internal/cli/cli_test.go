package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	junit "github.com/joshdk/go-junit"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
	"github.com/echoconform/echoconform/internal/proc"
	"github.com/echoconform/echoconform/internal/testbin"
)

func TestMain(m *testing.M) {
	forking.Init()
	conformance.Init()
	switch {
	case len(os.Args) == 3 && os.Args[1] == "-broken-echo":
		os.Exit(brokenEcho(os.Args[2], false))
	case len(os.Args) == 3 && os.Args[1] == "-broken-echo-random":
		os.Exit(brokenEcho(os.Args[2], true))
	case len(os.Args) == 4 && os.Args[1] == "-hostile":
		os.Exit(hostile(os.Args[2], os.Args[3]))
	case len(os.Args) > 1 && os.Args[1] == "-cli":
		os.Exit(Run(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cleanup, err := testbin.Supervisor()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := runWithEchochild(m)
	cleanup()
	os.Exit(code)
}

// runWithEchochild runs the tests with cmd/echochild beside the test
// binary, where `go install ./cmd/...` puts it beside echoconform: the
// forking reference's children then start as a user's do, three times
// faster than a re-executed test binary. Without it (a directory this
// process may not write) the children re-execute the test binary.
func runWithEchochild(m *testing.M) int {
	exe, err := os.Executable()
	if err != nil {
		return m.Run()
	}
	dir := filepath.Dir(exe)
	child := filepath.Join(dir, "echochild")
	if _, err := os.Stat(child); err == nil {
		return m.Run() // someone else's: leave it
	}
	if err := testbin.BuildIn(dir, false, "github.com/echoconform/echoconform/cmd/echochild"); err != nil {
		fmt.Fprintf(os.Stderr, "(the forking reference's children re-execute the test binary: %v)\n", err)
		return m.Run()
	}
	defer os.Remove(child)
	return m.Run()
}

// brokenEcho is a stream echo server that drops the third byte of every
// connection: the failing server of the report tests. With randomOnly it
// drops it only on a connection whose first byte is not 0x00: every fixed
// case of STREAM-1 starts with 0x00 (all 256 byte values in order), its
// random cases almost never do. A fault only the random cases reach, found
// and shrunk the same way whatever the timing: the report then has a seed
// and a minimal counterexample.
func brokenEcho(addr string, randomOnly bool) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 1
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			off := 0
			drop := !randomOnly
			for {
				n, err := c.Read(buf)
				if off == 0 && n > 0 {
					drop = drop || buf[0] != 0
				}
				out := buf[:n]
				if drop && off <= 2 && off+n > 2 {
					out = append(append([]byte{}, buf[:2-off]...), buf[3-off:n]...)
				}
				off += n
				if _, werr := c.Write(out); werr != nil || err != nil {
					c.(*net.TCPConn).CloseWrite()
					return
				}
			}
		}()
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// progressFree drops the progress lines, leaving what the user must read.
func progressFree(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !strings.Contains(l, " PASS ") && !strings.Contains(l, " FAIL ") && !strings.Contains(l, " SKIP ") {
			out = append(out, l)
		}
	}
	return out
}

func TestNoArgumentsChecksTheReferences(t *testing.T) {
	// Under -race the references are instrumented too: deadlines doubled.
	// One check of each kind, on the nine references: the path from no
	// arguments to nine reports and exit 0 is this test's; every check on
	// every reference is conformance's TestReferences (which runs each in
	// full, in process and as a command), and running them all again here
	// cost make test four minutes of CPU.
	args := []string{"-time-scale", raceTimeScale,
		"-run", "STREAM-[23]|ONESHOT-[25]|LINE-[46]|PREFIX-2|MODEL|CONC-1|SHUT-4|LEAK-2|ALIVE"}
	page := filepath.Join(t.TempDir(), "report.html")
	args = append(args, "-html", page)
	code, stdout, stderr := runCLI(t, args...)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	// The page of every reference stays small enough to mail (a full run
	// of each third-party server is TestThirdPartyServers').
	fi, err := os.Stat(page)
	require.NoError(t, err)
	t.Logf("HTML report: %d bytes", fi.Size())
	require.Less(t, fi.Size(), int64(1<<20))
	for _, want := range []string{"threading reference (protocol stream", "forking reference (protocol stream",
		"threading reference (protocol oneshot", "forking reference (protocol oneshot",
		"threading reference (protocol line", "forking reference (protocol line",
		"event-loop reference (protocol stream", "event-loop reference (protocol oneshot", "event-loop reference (protocol line"} {
		require.Contains(t, stdout, want)
	}
	// Exit 0 is the contract (every MUST); the SHOULDs are logged, not
	// asserted here.
	require.Equal(t, 9, strings.Count(stdout, " 0 failed, "), stdout)
	if n := strings.Count(stdout, " 0 warned (SHOULD),"); n != 9 {
		t.Logf("SHOULD warnings on the references:\n%s", stdout)
	}
	require.NotEmpty(t, stderr, "progress goes to stderr")
}

func TestHelp(t *testing.T) {
	code, stdout, stderr := runCLI(t, "-h")
	require.Equal(t, 0, code)
	require.Empty(t, stdout)
	for _, want := range []string{"-- COMMAND", "-addr HOST:PORT", "reference servers", "-time-scale", "-junit", "-strict"} {
		require.Contains(t, stderr, want)
	}
}

// TestHarnessErrors: every way the harness cannot run is exit 2 with one
// line, no report, and no process left behind.
func TestHarnessErrors(t *testing.T) {
	token := fmt.Sprintf("31.%d", os.Getpid()) // a sleep duration no one else uses
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"bad protocol", []string{"-protocol", "udp"}, "unknown protocol"},
		{"unknown placeholder", []string{"-prefix", "{tid}: "}, "unknown placeholder {tid}"},
		{"bad model", []string{"-model", "process"}, "unknown model"},
		{"bad event-threads", []string{"-model", "event", "-event-threads", "-1"}, "-event-threads must not be negative"},
		{"bad max-line", []string{"-protocol", "line", "-max-line", "0"}, "-max-line must be positive"},
		{"bad line-eof", []string{"-protocol", "line", "-line-eof", "keep"}, `-line-eof: unknown value "keep"`},
		{"unknown requirement", []string{"-run", "STREAM-99"}, "matches no requirement ID"},
		{"bad regexp", []string{"-skip", "("}, "-skip"},
		{"both targets", []string{"-addr", "127.0.0.1:1", "--", "true"}, "not both"},
		{"command not found", []string{"--", "/nonexistent/echo-server", "{port}"}, "no such file"},
		{"server exits at once", []string{"--", "sh", "-c", "exit 3"}, "exited (exit status 3) before listening"},
		{"server never listens", []string{"-time-scale", "0.05", "--", "sleep", token}, "did not listen on 127.0.0.1:"},
		{"nothing at the address", []string{"-addr", "127.0.0.1:1"}, "connection refused"},
		{"both transports", []string{"--", "server", "{port}", "{sock}"}, "names addresses of 2 transports ({port} {addr} {sock} $SOCK ${SOCK}): give one"},
		{"unix address without a path", []string{"-addr", "unix:"}, "-addr: bad address \"unix:\": no path after unix:"},
		{"nothing at the unix path", []string{"-addr", "unix:/nonexistent/echo.sock"}, "no such file or directory"},
		{"unix path too long", []string{"-addr", "unix:/" + strings.Repeat("x", 200)}, "at most 107 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			lines := progressFree(stderr)
			require.Len(t, lines, 1, "one line: %q", stderr)
			require.Contains(t, lines[0], tc.want)
			require.True(t, strings.HasPrefix(lines[0], "echoconform: "), lines[0])
			require.Empty(t, processesWith(t, token), "processes left behind")
		})
	}
}

// processesWith lists the processes whose command line contains token.
func processesWith(t *testing.T, token string) []string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []string
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && bytes.Contains(b, []byte(token)) && !bytes.Contains(b, []byte("-test.")) {
			found = append(found, d+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

func TestFailingServerReports(t *testing.T) {
	dir := t.TempDir()
	xmlPath := filepath.Join(dir, "report.xml")
	ids := "STREAM|PREFIX-1|SHUT-5"
	if testing.Short() {
		ids = "STREAM-1|PREFIX-1|SHUT-5" // -short: STREAM-2..4 left out
	}
	code, stdout, stderr := runCLI(t, "-json", "-junit", xmlPath, "-run", ids,
		"--", os.Args[0], "-broken-echo", "{addr}")
	require.Equal(t, 1, code, stderr)

	// JSON: valid against the schema, the failure explained.
	requireSchemaValid(t, stdout)
	var rep struct {
		Summary struct{ Failed int }
		Reports []struct {
			Results []struct {
				ID, Verdict, Message, Counterexample string
				Seed                                 uint64
				Transcript                           []json.RawMessage
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.Positive(t, rep.Summary.Failed)
	byID := map[string]int{}
	for i, r := range rep.Reports[0].Results {
		byID[r.ID] = i
	}
	s1 := rep.Reports[0].Results[byID["STREAM-1"]]
	require.Equal(t, "FAIL", s1.Verdict)
	// The dropped third byte shows as a difference at offset 2, or, when
	// the transfer ends there, as the first missing byte. STREAM-1's fixed
	// cases run before its random ones and catch it (the 3-byte case): no
	// seed is needed to see it again, every run does.
	require.Regexp(t, `(differs at|first missing byte is at) offset 2\b`, s1.Message)
	require.Contains(t, s1.Message, "a fixed case")
	require.NotEmpty(t, s1.Transcript)
	require.Equal(t, "PASS", rep.Reports[0].Results[byID["SHUT-5"]].Verdict)

	// JUnit: a real parser reads one testcase per requirement.
	suites, err := junit.IngestFile(xmlPath)
	require.NoError(t, err)
	require.Len(t, suites, 1)
	require.Len(t, suites[0].Tests, len(rep.Reports[0].Results))
	for _, tc := range suites[0].Tests {
		r := rep.Reports[0].Results[byID[strings.Fields(tc.Name)[0]]]
		want := map[string]junit.Status{"PASS": junit.StatusPassed, "FAIL": junit.StatusFailed, "SKIP": junit.StatusSkipped}[r.Verdict]
		require.Equal(t, want, tc.Status, tc.Name)
	}

	// Text, on a fault only the random cases reach (a first byte other
	// than 0x00): the counterexample and the command that reproduces it
	// with its seed.
	code, stdout, _ = runCLI(t, "-seed", "3", "-run", "STREAM-1", "--", os.Args[0], "-broken-echo-random", "{addr}")
	require.Equal(t, 1, code, stdout)
	require.Contains(t, stdout, "STREAM-1   FAIL")
	// The verdict is named once: the detail under it does not repeat it.
	i := slices.IndexFunc(conformance.Requirements(), func(r conformance.Requirement) bool { return r.ID == "STREAM-1" })
	require.Equal(t, 1, strings.Count(stdout, conformance.Requirements()[i].Title), stdout)
	require.Contains(t, stdout, "\n    requirement: ", stdout)
	require.NotContains(t, stdout, "a fixed case", stdout)
	require.Contains(t, stdout, "minimal counterexample:")
	require.Contains(t, stdout, "reproduce: echoconform -run '^STREAM-1$' -seed=")
	require.Contains(t, stdout, "0 passed, 1 failed")
	// It ends with what to do next.
	require.Contains(t, stdout, "\nwhat to do next:\n  STREAM-1 FAIL: echoconform -run '^STREAM-1$' -seed=")
	require.Contains(t, stdout, "add -v to see")
	require.Contains(t, stdout, "add -html report.html")
}

func TestAttach(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := threading.New(echo.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	code, stdout, stderr := runCLI(t, "-addr", ln.Addr().String(), "-model", "thread", "-skip", "SHUT|LEAK")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	require.Contains(t, stdout, "address "+ln.Addr().String())
	pids, err := proc.ListenerPIDs(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, err)
	require.Contains(t, pids, os.Getpid(), "the listener is this process, so the process checks ran")
	require.Contains(t, stdout, "MODEL-1    PASS")
}

// TestAttachUnix attaches to a server on a Unix-domain socket
// (-addr unix:PATH): the process checks find it by its socket file's
// inode, the JSON report (valid against the schema) records the transport
// and the address, and SHUT-8 does not apply to a server the harness did
// not start.
func TestAttachUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.UnixConn).CloseWrite()
			}()
		}
	}()
	code, stdout, stderr := runCLI(t, "-json", "-addr", "unix:"+path, "-model", "thread", "-run", "STREAM-[23]|MODEL-1|CONC-4|SHUT-8")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	requireSchemaValid(t, stdout)
	var rep struct {
		Reports []struct {
			Target, Transport string
			Results           []struct {
				ID, Verdict, Message string
				ServerAddr           string `json:"server_addr"`
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.Len(t, rep.Reports, 1)
	r := rep.Reports[0]
	require.Equal(t, "address unix:"+path, r.Target)
	require.Equal(t, "unix", r.Transport)
	verdicts := map[string]string{}
	for _, res := range r.Results {
		verdicts[res.ID] = res.Verdict
		if res.Verdict != "SKIP" {
			require.Equal(t, "unix:"+path, res.ServerAddr, res.ID)
		}
	}
	require.Equal(t, map[string]string{"STREAM-2": "PASS", "STREAM-3": "PASS", "MODEL-1": "PASS", "CONC-4": "PASS", "SHUT-8": "SKIP"}, verdicts,
		"MODEL-1 needs the listener's process (this one), CONC-4 its backlog (Go's: somaxconn)")
}

// TestLineDeclarations checks that a line server's declarations reach the
// checks and the JSON report (valid against the schema): the threading
// reference, which echoes a final line without a newline, declared to
// drop it, fails LINE-4 and nothing else.
func TestLineDeclarations(t *testing.T) {
	code, stdout, stderr := runCLI(t, "-json", "-protocol", "line", "-model", "thread", "-max-line", "100",
		"-line-eof", "drop", "-run", "LINE-[45]", "-time-scale", raceTimeScale)
	require.Equal(t, 1, code, stderr)
	requireSchemaValid(t, stdout)
	var rep struct {
		Reports []struct {
			Options struct {
				Protocol  string
				MaxLine   int    `json:"max_line"`
				FinalLine string `json:"line_eof"`
			}
			Results []struct{ ID, Verdict, Message string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	require.Len(t, rep.Reports, 1)
	r := rep.Reports[0]
	require.Equal(t, "line", r.Options.Protocol)
	require.Equal(t, 100, r.Options.MaxLine)
	require.Equal(t, "drop", r.Options.FinalLine)
	require.Len(t, r.Results, 2)
	require.Equal(t, "FAIL", r.Results[0].Verdict, "LINE-4")
	require.Contains(t, r.Results[0].Message, "declared: -line-eof drop")
	require.Equal(t, "PASS", r.Results[1].Verdict, "LINE-5 with max-line 100: %s", r.Results[1].Message)
}

// requireSchemaValid fails unless report is valid against the JSON
// report's schema.
func requireSchemaValid(t *testing.T, report string) {
	t.Helper()
	schema, err := jsonschema.NewCompiler().Compile("../../testdata/report.schema.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(report))
	require.NoError(t, err)
	require.NoError(t, schema.Validate(doc))
}
