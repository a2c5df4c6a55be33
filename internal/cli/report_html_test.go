package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/internal/domtest"
	"github.com/echoconform/echoconform/internal/proc"
	"github.com/echoconform/echoconform/internal/testbin"
)

// chromium runs headless Chromium with args and returns what it wrote on
// stdout. Every process of the browser is ended, and those this process
// adopted (a subreaper, once it has started a server) reaped, before it
// returns: its process group, and its crash handlers, which leave the group
// for a session of their own and are told apart by the home directory
// given to this browser alone.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	path := testbin.Tool(t, "chromium", "chromium")
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--no-default-browser-check", "--disable-extensions", "--disable-background-networking", "--disable-component-update",
		"--user-data-dir=" + filepath.Join(home, "profile")}
	cmd := exec.CommandContext(ctx, path, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	defer endBrowser(t, cmd.Process.Pid, home)
	require.NoError(t, cmd.Wait(), "chromium %s: %s", strings.Join(args, " "), stderr.String())
	return stdout.Bytes()
}

// endBrowser kills what is left of process group pgid and of the
// processes whose command line names home, and waits until none of them
// remains, reaping those this process adopted.
func endBrowser(t *testing.T, pgid int, home string) {
	t.Helper()
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	limit := time.NewTimer(10 * time.Second)
	defer limit.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		left := browserProcesses(pgid, home)
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			proc.Kill(syscall.SIGKILL, pid)
			if info, err := proc.Read(pid); err == nil && info.PPID == os.Getpid() {
				proc.ReapZombies(pid)
			}
		}
		select {
		case <-limit.C:
			t.Errorf("processes %v of chromium outlived it", browserProcesses(pgid, home))
			return
		case <-tick.C:
		}
	}
}

func browserProcesses(pgid int, home string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "%d", &pid); err != nil {
			continue
		}
		info, err := proc.Read(pid)
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		// A zombie has no command line left: a crash handler that exited
		// after this process adopted it is known by its name.
		adopted := info.PPID == os.Getpid() && info.State == "Z" && strings.HasPrefix(info.Comm, "chrome_crashpad")
		if info.PGID == pgid || bytes.Contains(cmdline, []byte(home)) || adopted {
			out = append(out, pid)
		}
	}
	return out
}

// decodeReports checks JSON output against the schema and decodes it.
func decodeReports(t *testing.T, stdout string) []conformance.Report {
	t.Helper()
	schema, err := jsonschema.NewCompiler().Compile("../../testdata/report.schema.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(stdout))
	require.NoError(t, err)
	require.NoError(t, schema.Validate(doc))
	var out struct{ Reports []conformance.Report }
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	return out.Reports
}

// TestHTMLReportInChromium renders the HTML reports of a failing and of a
// passing run in headless Chromium and reads the DOM the browser built:
// every requirement has its row, the failure's sequence diagram has a lane
// per connection of its transcript, a pass's measurements are drawn and
// folded, and nothing in the page makes a request. A screenshot of each is
// left in the test's temporary directory (and copied to
// $ECHOCONFORM_SCREENSHOTS, when set, for the README).
func TestHTMLReportInChromium(t *testing.T) {
	testbin.Tool(t, "chromium", "chromium")
	dir := t.TempDir()
	failPath, passPath := filepath.Join(dir, "fail.html"), filepath.Join(dir, "pass.html")
	code, stdout, stderr := runCLI(t, "-json", "-html", failPath, "-run", "STREAM-1|STREAM-3|PREFIX-1|SHUT-5",
		"--", os.Args[0], "-broken-echo", "{addr}")
	require.Equal(t, 1, code, stderr)
	failed := decodeReports(t, stdout)
	// A process of its own: the LEAK checks of an in-process server read
	// the whole process, and this one may have adopted orphans of earlier
	// tests (TestHarnessKilled leaves its harness's supervisor unreaped).
	cmd := cliProcess(t, "-json", "-html", passPath, "-time-scale", raceTimeScale, "-timeout", "5m", "-model", "fork", "-protocol", "stream",
		"-run", "STREAM-2|MODEL-1|CONC-2|LEAK")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "%s\n%s", errOut.String(), out.String())
	passed := decodeReports(t, out.String())

	t.Run("failing", func(t *testing.T) {
		doc := render(t, failPath, failed)
		s1 := failed[0].Results[0]
		require.Equal(t, "STREAM-1", s1.ID)
		require.Equal(t, conformance.Fail, s1.Verdict)
		var conns []int
		for _, e := range s1.Transcript {
			if e.Conn > 0 && !slices.Contains(conns, e.Conn) {
				conns = append(conns, e.Conn)
			}
		}
		require.NotEmpty(t, conns)
		detail := domtest.ByID(doc, "r0-STREAM-1-d")
		require.NotNil(t, detail, "the failure's section")
		svgs := domtest.All(detail, domtest.Tag("svg", "seq"))
		require.Len(t, svgs, 1, "one sequence diagram")
		lanes := domtest.All(svgs[0], domtest.Tag("g", "lane", "conn"))
		require.Len(t, lanes, len(conns), "a lane per connection of the transcript %v", conns)
		require.NotEmpty(t, domtest.All(svgs[0], domtest.Tag("g", "lane", "server")))
		// The broken echo drops the third byte: the first difference is at
		// offset 2, marked on both sides.
		marks := domtest.All(detail, domtest.Tag("mark"))
		require.Len(t, marks, 2)
		require.Contains(t, domtest.Text(detail), "the echo first differs at byte 2")
		require.Contains(t, domtest.Text(detail), "reproduce: echoconform -run '^STREAM-1$'")
	})
	t.Run("passing", func(t *testing.T) {
		doc := render(t, passPath, passed)
		for _, id := range []string{"LEAK-1", "LEAK-2", "LEAK-3", "LEAK-4", "CONC-2"} {
			d := domtest.ByID(doc, "r0-"+id+"-d")
			require.NotNil(t, d, "%s shows what it measured", id)
			require.Equal(t, "details", d.Data, id)
			require.False(t, domtest.HasAttr(d, "open"), "%s: a pass's figures are folded", id)
			require.Len(t, domtest.All(d, domtest.Tag("svg", "chart")), 1, id)
		}
		trees := domtest.All(domtest.ByID(doc, "r0-MODEL-1-d"), domtest.Tag("div", "tree"))
		require.Len(t, trees, 2, "the process tree at rest and under load")
		// Under load, the forking reference has a child per connection.
		require.GreaterOrEqual(t, len(domtest.All(trees[1], domtest.Tag("li"))), 1+4)
		require.Empty(t, domtest.All(doc, domtest.Tag("section", "detail")), "no failure")
	})
}

// render loads the page in Chromium and returns the DOM it built, after
// the checks every page passes: a row per requirement, with its verdict,
// and no request.
func render(t *testing.T, path string, reports []conformance.Report) *html.Node {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	start := time.Now()
	dom := chromium(t, "--dump-dom", "file://"+path)
	t.Logf("%s: %d bytes of HTML; Chromium loaded it and dumped its DOM in %v", filepath.Base(path), fi.Size(), time.Since(start).Round(time.Millisecond))
	doc, err := domtest.Parse(bytes.NewReader(dom))
	require.NoError(t, err)
	require.Contains(t, domtest.CSP(doc), "default-src 'none'", "the page may fetch nothing")
	require.Empty(t, domtest.Requests(doc))
	rows := domtest.All(doc, domtest.Tag("tr", "row"))
	n := 0
	for i, rep := range reports {
		for _, r := range rep.Results {
			row := domtest.ByID(doc, fmt.Sprintf("r%d-%s", i, r.ID))
			require.NotNil(t, row, "the row of %s", r.ID)
			want := string(r.Verdict)
			if r.Verdict == conformance.Fail && r.Level == conformance.SHOULD {
				want = "WARN"
			}
			require.Equal(t, want, domtest.Attr(row, "data-verdict"), r.ID)
			n++
		}
	}
	require.Len(t, rows, n, "a row per requirement, and no other")

	png := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(path), ".html")+".png")
	chromium(t, "--screenshot="+png, "--window-size=1280,1400", "--hide-scrollbars", "file://"+path)
	b, err := os.ReadFile(png)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")), "a PNG screenshot")
	t.Logf("screenshot: %s (%d bytes)", png, len(b))
	if keep := os.Getenv("ECHOCONFORM_SCREENSHOTS"); keep != "" {
		require.NoError(t, os.WriteFile(filepath.Join(keep, filepath.Base(png)), b, 0o644))
	}
	return doc
}
