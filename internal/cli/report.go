package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/echoconform/echoconform/conformance"
)

// write renders the reports: JSON or text on stdout, JUnit and HTML to
// files. runErr is why the harness could not finish, if it could not.
func (c *config) write(reports []*conformance.Report, runErr error, stdout io.Writer) error {
	if c.html != "" {
		if err := c.writeHTML(reports, runErr); err != nil {
			return err
		}
	}
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
	c.writeNext(stdout, reports)
	return nil
}

func (c *config) writeHTML(reports []*conformance.Report, runErr error) error {
	f, err := os.Create(c.html)
	if err != nil {
		return err
	}
	o := conformance.HTMLOptions{Strict: c.strict, Command: c.commandLine(),
		Reproduce: func(_ *conformance.Report, r conformance.Result) string { return c.reproduce(r) }}
	if runErr != nil {
		o.HarnessError = oneLine(runErr)
	}
	if err := conformance.WriteHTML(f, reports, o); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// commandLine is the run's command line, quoted for a shell.
func (c *config) commandLine() string {
	args := []string{"echoconform"}
	for _, a := range c.args {
		args = append(args, shellQuote(a))
	}
	return strings.Join(args, " ")
}

// writeNext ends a text report with what to do about each failure: the
// command that replays it, -v for the details, the HTML report for the
// transcripts drawn.
func (c *config) writeNext(w io.Writer, reports []*conformance.Report) {
	var lines []string
	for _, rep := range reports {
		for _, r := range rep.Results {
			if r.Verdict != conformance.Fail && r.Verdict != conformance.Error {
				continue
			}
			on := ""
			if len(reports) > 1 {
				on = " on " + rep.Target + " (" + rep.Options.Protocol + ")"
			}
			lines = append(lines, fmt.Sprintf("  %s %s%s: %s", r.ID, c.verdict(r), on, c.reproduce(r)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\nwhat to do next:\n%s\n", strings.Join(lines, "\n"))
	if !c.verbose {
		fmt.Fprintln(w, "  add -v to see every requirement's details and the server's output")
	}
	if c.html != "" {
		fmt.Fprintf(w, "  open %s for each failure's counterexample and its transcript drawn\n", c.html)
	} else {
		fmt.Fprintln(w, "  add -html report.html for a page with each failure's transcript drawn")
	}
}

// verdict is a result's verdict as the text report shows it.
func (c *config) verdict(r conformance.Result) string {
	if r.Verdict == conformance.Fail && r.Level == conformance.SHOULD && !c.strict {
		return "WARN"
	}
	return string(r.Verdict)
}

var colors = map[conformance.Verdict]string{
	conformance.Pass: "\x1b[32m", conformance.Fail: "\x1b[31m", conformance.Skip: "\x1b[2m", conformance.Error: "\x1b[35m",
}

func (c *config) writeText(w io.Writer, rep *conformance.Report, color bool) {
	fmt.Fprintf(w, "echoconform: %s (protocol %s, prefix %q, model %s, transport %s)\n", rep.Target, rep.Options.Protocol, rep.Options.Prefix, rep.Options.Model, rep.Transport)
	for _, r := range rep.Results {
		verdict := c.verdict(r)
		shown := fmt.Sprintf("%-5s", verdict)
		if color {
			shown = colors[r.Verdict] + shown + "\x1b[0m"
		}
		fmt.Fprintf(w, "%-10s %s %-6s %s (%v)\n", r.ID, shown, r.Level, r.Title, r.Duration.Round(1e6))
		switch {
		case r.Verdict == conformance.Fail || r.Verdict == conformance.Error:
			// The line above names the verdict: FormatResult's first
			// line would say it again.
			if _, detail, ok := strings.Cut(conformance.FormatResult(r), "\n"); ok {
				fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(detail, "\n", "\n  "))
			}
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
