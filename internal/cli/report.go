package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/echoconform/echoconform/conformance"
)

// write renders the reports: JSON or text on stdout, JUnit to a file.
func (c *config) write(reports []*conformance.Report, stdout, stderr io.Writer) error {
	if c.junit != "" {
		f, err := os.Create(c.junit)
		if err != nil {
			return err
		}
		if err := conformance.WriteJUnit(f, reports, c.strict); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if c.json {
		return conformance.WriteJSON(stdout, reports, c.strict)
	}
	color := isTerminal(stdout)
	for _, rep := range reports {
		c.writeText(stdout, rep, color)
	}
	return nil
}

var colors = map[conformance.Verdict]string{
	conformance.Pass: "\x1b[32m", conformance.Fail: "\x1b[31m", conformance.Skip: "\x1b[2m", conformance.Error: "\x1b[35m",
}

func (c *config) writeText(w io.Writer, rep *conformance.Report, color bool) {
	fmt.Fprintf(w, "echoconform: %s (protocol %s, prefix %q, model %s)\n", rep.Target, rep.Options.Protocol, rep.Options.Prefix, rep.Options.Model)
	for _, r := range rep.Results {
		verdict := string(r.Verdict)
		if r.Verdict == conformance.Fail && r.Level == conformance.SHOULD && !c.strict {
			verdict = "WARN"
		}
		shown := fmt.Sprintf("%-5s", verdict)
		if color {
			shown = colors[r.Verdict] + shown + "\x1b[0m"
		}
		fmt.Fprintf(w, "%-10s %s %-6s %s (%v)\n", r.ID, shown, r.Level, r.Title, r.Duration.Round(1e6))
		switch {
		case r.Verdict == conformance.Fail || r.Verdict == conformance.Error:
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(conformance.FormatResult(r), "\n", "\n    "))
			fmt.Fprintf(w, "    reproduce: %s\n", c.reproduce(r))
		case c.verbose && r.Message != "":
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(r.Message, "\n", "\n    "))
		}
	}
	s := rep.Summarize(c.strict)
	fmt.Fprintf(w, "%d passed, %d failed, %d warned (SHOULD), %d skipped, %d errors in %v\n",
		s.Passed, s.Failed, s.Warned, s.Skipped, s.Errors, rep.Duration.Round(1e6))
}

// reproduce is the command line that runs the failed check again with the
// same seed.
func (c *config) reproduce(r conformance.Result) string {
	args := []string{"echoconform", "-run", "^" + r.ID + "$"}
	if r.Seed != 0 {
		args = append(args, fmt.Sprintf("-seed=%d", r.Seed))
	}
	args = append(args, c.flags...)
	switch {
	case len(c.argv) > 0:
		args = append(append(args, "--"), c.argv...)
	case c.addr != "":
		args = append(args, "-addr", c.addr)
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
