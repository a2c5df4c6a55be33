package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
)

// TestTerminalShowsEachRequirementOnce runs the CLI on a pseudo-terminal
// and reads the screen it leaves: the live status line was shown and
// erased, and each requirement's verdict is on screen once (it used to be
// twice: a progress line, then the report's).
func TestTerminalShowsEachRequirementOnce(t *testing.T) {
	ids := []string{"STREAM-2", "PREFIX-1", "CONC-1", "MODEL-1"}
	raw, code := onTerminal(t, "-model", "thread", "-protocol", "stream", "-time-scale", raceTimeScale, "-run", strings.Join(ids, "|"))
	lines := screen(raw)
	require.Equal(t, 0, code, "%s", strings.Join(lines, "\n"))
	require.Contains(t, string(raw), "\r\x1b[Kechoconform: 0/4", "the status line: done of all")
	require.Regexp(t, `\r\x1b\[Kechoconform: \d/4 [A-Z]+-\d running, \d+s`, string(raw), "the status line names the requirement running")
	for _, id := range ids {
		verdict := regexp.MustCompile(`\b` + id + `\s+(PASS|FAIL|WARN|SKIP|ERROR)\b`)
		n := 0
		for _, l := range lines {
			if verdict.MatchString(l) {
				n++
			}
		}
		require.Equal(t, 1, n, "%s's verdict on screen:\n%s", id, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		require.NotContains(t, l, "running", "the status line was erased")
	}
	require.Contains(t, strings.Join(lines, "\n"), "4 passed, 0 failed")
}

// onTerminal runs the CLI (this test binary, -cli) with its stdout and
// stderr on a pseudo-terminal, and returns what it wrote there and its
// exit status.
func onTerminal(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 60, Cols: 200}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-cli"}, args...)...)
	cmd.Stdout, cmd.Stderr = tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Start())
	tty.Close() // the child has its own copy: reads end (EIO) when it exits
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx)
		out <- b
	}()
	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything it left
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	select {
	case b := <-out:
		return b, code
	case <-ctx.Done():
		ptmx.Close()
		t.Fatalf("the terminal stayed open after the CLI exited: %s", <-out)
	}
	return nil, code
}

var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// screen plays raw terminal output as a terminal shows it (carriage
// return, erase to the end of the line, newline; colours dropped) and
// returns the lines left on the screen.
func screen(raw []byte) []string {
	raw = sgr.ReplaceAll(raw, nil)
	var lines []string
	var cur []rune
	col := 0
	s := string(raw)
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "\x1b[K"):
			cur = cur[:min(col, len(cur))]
			s = s[3:]
			continue
		case s[0] == '\r':
			col = 0
		case s[0] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		default:
			r := []rune(s[:runeLen(s)])[0]
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
			s = s[runeLen(s):]
			continue
		}
		s = s[1:]
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

func runeLen(s string) int {
	for i := range s {
		if i > 0 {
			return i
		}
	}
	return len(s)
}

// TestScreen tests the terminal the test above reads with.
func TestScreen(t *testing.T) {
	got := screen([]byte("a\r\x1b[Kstatus 1\r\x1b[Kstatus 2\r\x1b[K\x1b[32mPASS\x1b[0m x\r\nnext\n"))
	require.Equal(t, []string{"PASS x", "next"}, got)
	require.Equal(t, []string{"abc"}, screen(bytes.TrimSpace([]byte("xyc\rab"))))
}

// TestTerminalFailure runs a failing check on a pseudo-terminal: the status
// line counts the failures so far, and the screen ends with what to do next.
func TestTerminalFailure(t *testing.T) {
	raw, code := onTerminal(t, "-run", "STREAM-1|SHUT-5", "--", os.Args[0], "-broken-echo", "{addr}")
	lines := screen(raw)
	require.Equal(t, 1, code, "%s", strings.Join(lines, "\n"))
	require.Regexp(t, `\r\x1b\[Kechoconform: 1/2 SHUT-5 running, \d+s, 1 failed so far`, string(raw))
	rows := map[string]int{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && (f[0] == "STREAM-1" || f[0] == "SHUT-5") && strings.HasPrefix(l, f[0]+" ") {
			rows[f[0]]++
		}
	}
	require.Equal(t, map[string]int{"STREAM-1": 1, "SHUT-5": 1}, rows, "a row each in the report")
	screenText := strings.Join(lines, "\n")
	require.Contains(t, screenText, "what to do next:\n  STREAM-1 FAIL: echoconform -run '^STREAM-1$'")
	require.NotContains(t, screenText, "running")
}
