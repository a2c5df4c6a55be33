package conformance

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/echoconform/echoconform/internal/reply"
)

// The HTML report is one file that opens offline: the CSS and the drawings
// (SVG) are inline, there is no script (the verdict filter is CSS), and a
// Content-Security-Policy forbids the page any request, so that a report
// sent by mail or attached to a bug shows the same everywhere.

//go:embed report_html.tmpl
var htmlTemplateText string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"secs": func(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) },
	"add":  func(a, b int) int { return a + b },
}).Parse(htmlTemplateText))

// HTMLOptions are what the caller knows of a run that its reports do not.
type HTMLOptions struct {
	Strict bool // failed SHOULDs count as failures
	// Command is the command line of the whole run, shown at the top.
	Command string
	// HarnessError says why the harness could not finish the run (exit
	// status 2), or is empty.
	HarnessError string
	// Reproduce returns the command that runs one failed check again; by
	// default, an echoconform command line built from the report's options.
	Reproduce func(*Report, Result) string
}

// WriteHTML writes the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return WriteHTML(w, []*Report{r}, HTMLOptions{})
}

// WriteHTML writes reports as one self-contained HTML page: a summary, a
// row per requirement (filterable by verdict, linked to the SPEC text),
// and for each failure its counterexample and a sequence diagram of its
// transcript; the measurements (LEAK's rounds, CONC-2 over time, the
// process tree) are drawn for every verdict.
func WriteHTML(w io.Writer, reports []*Report, o HTMLOptions) error {
	return htmlTemplate.Execute(w, buildPage(reports, o))
}

type htmlPage struct {
	Command      string
	Generated    string
	ExitStatus   int
	ExitMeaning  string
	HarnessError string
	Strict       bool
	Summary      Summary
	Verdicts     []string
	Reports      []htmlReport
	Spec         []Requirement
}

type htmlReport struct {
	Anchor     string
	Target     string
	Transport  string
	Options    ReportOptions
	Duration   time.Duration
	Summary    Summary
	ExitStatus int
	Rows       []htmlRow
}

type htmlRow struct {
	Anchor, ID, Level, Title, Verdict string
	Duration                          time.Duration
	Text                              string // the requirement in SPEC.md
	Message, Counterexample           string
	ServerOutput                      string
	Reproduce                         string
	ServerPID                         int
	Failed                            bool // FAIL, WARN or ERROR: shown open, with a diagram
	Mismatch                          *htmlMismatch
	Diagram                           *seqDiagram
	Charts                            []chart
	Rounds                            []Reading
	Trees                             []htmlTree
}

// shownVerdict is a result's verdict as a person reads it: a failed SHOULD
// is a WARN unless strict.
func shownVerdict(r Result, strict bool) string {
	if r.Verdict == Fail && r.Level == SHOULD && !strict {
		return "WARN"
	}
	return string(r.Verdict)
}

func buildPage(reports []*Report, o HTMLOptions) htmlPage {
	p := htmlPage{Command: o.Command, HarnessError: o.HarnessError, Strict: o.Strict,
		Generated: time.Now().Format("2006-01-02 15:04:05 MST"),
		Verdicts:  []string{"FAIL", "WARN", "ERROR", "PASS", "SKIP"}}
	specSeen := map[string]bool{}
	for i, rep := range reports {
		s := rep.Summarize(o.Strict)
		hr := htmlReport{Anchor: fmt.Sprintf("r%d", i), Target: rep.Target, Transport: rep.Transport, Options: rep.Options,
			Duration: rep.Duration, Summary: s}
		if s.Failed > 0 {
			hr.ExitStatus = 1
		}
		p.ExitStatus = max(p.ExitStatus, hr.ExitStatus)
		p.Summary.Passed += s.Passed
		p.Summary.Failed += s.Failed
		p.Summary.Warned += s.Warned
		p.Summary.Skipped += s.Skipped
		p.Summary.Errors += s.Errors
		for _, res := range rep.Results {
			hr.Rows = append(hr.Rows, buildRow(hr.Anchor, rep, res, o))
			specSeen[res.ID] = true
		}
		p.Reports = append(p.Reports, hr)
	}
	if o.HarnessError != "" {
		p.ExitStatus = 2
	}
	if p.Command == "" && len(reports) == 1 {
		p.Command = commandFor(reports[0])
	}
	p.ExitMeaning = [...]string{"every MUST holds", "a requirement failed", "the harness could not run"}[p.ExitStatus]
	if o.Strict && p.ExitStatus == 0 {
		p.ExitMeaning = "every MUST and every SHOULD holds"
	}
	for _, req := range requirements {
		if specSeen[req.ID] {
			p.Spec = append(p.Spec, req)
		}
	}
	return p
}

func buildRow(anchor string, rep *Report, res Result, o HTMLOptions) htmlRow {
	row := htmlRow{Anchor: anchor + "-" + res.ID, ID: res.ID, Level: string(res.Level), Title: res.Title,
		Verdict: shownVerdict(res, o.Strict), Duration: res.Duration, Message: res.Message,
		Counterexample: res.Counterexample, ServerOutput: strings.TrimPrefix(res.ServerOutput, "\n"), ServerPID: res.ServerPID}
	if req, ok := requirement(res.ID); ok {
		row.Text = req.Text
	}
	row.Failed = res.Verdict == Fail || res.Verdict == Error
	if row.Failed {
		if o.Reproduce != nil {
			row.Reproduce = o.Reproduce(rep, res)
		} else {
			row.Reproduce = defaultReproduce(rep, res)
		}
		if res.Mismatch != nil {
			row.Mismatch = buildMismatch(res.Mismatch)
		}
		if len(res.Transcript) > 0 {
			row.Diagram = buildDiagram(res)
		}
	}
	if f := res.Figures; f != nil {
		if len(f.Rounds) > 0 {
			row.Charts = append(row.Charts, roundsChart(f.Rounds))
			row.Rounds = f.Rounds
		}
		if len(f.Concurrency) > 0 {
			row.Charts = append(row.Charts, concurrencyChart(f.Concurrency))
		}
		for _, t := range f.Trees {
			row.Trees = append(row.Trees, buildTree(t))
		}
	}
	return row
}

// defaultReproduce is an echoconform command line for a report the CLI
// did not write: the check, its seed, the declarations and the target.
func defaultReproduce(rep *Report, r Result) string {
	args := []string{"-run", shq("^" + r.ID + "$")}
	if r.Seed != 0 {
		args = append(args, fmt.Sprintf("-seed=%d", r.Seed))
	}
	return commandFor(rep, args...)
}

// commandFor is the echoconform command line that checks rep's target as
// it was checked, with args first.
func commandFor(rep *Report, args ...string) string {
	op := rep.Options
	args = append(append([]string{"echoconform"}, args...), "-protocol="+op.Protocol, "-model="+string(op.Model))
	if op.Prefix != "" {
		args = append(args, "-prefix="+shq(op.Prefix))
	}
	switch {
	case strings.HasPrefix(rep.Target, "command "):
		args = append(args, "--", strings.TrimPrefix(rep.Target, "command "))
	case strings.HasPrefix(rep.Target, "address "):
		args = append(args, "-addr", strings.TrimPrefix(rep.Target, "address "))
	default:
		args = append(args, "# "+rep.Target)
	}
	return strings.Join(args, " ")
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// htmlMismatch is a Mismatch cut for the page: the bytes around the first
// difference shown, the whole window folded.
type htmlMismatch struct {
	*Mismatch
	Sent, Received         bytesAround
	SentFull, ReceivedFull string
	Folded                 bool
}

// bytesAround is data quoted in three parts: before the byte at the first
// difference, that byte (highlighted), and after it.
type bytesAround struct {
	Lead, Before, At, After, Trail string
}

const shownAround = 24 // bytes shown on each side of the first difference

func buildMismatch(m *Mismatch) *htmlMismatch {
	h := &htmlMismatch{Mismatch: m}
	lo, hi := max(m.Start, m.Offset-shownAround), m.Offset+shownAround
	h.Sent, h.Received = around(m.Sent, m.Start, m.Offset, lo, hi), around(m.Received, m.Start, m.Offset, lo, hi)
	h.Folded = lo > m.Start || m.Start+max(len(m.Sent), len(m.Received)) > hi
	h.SentFull, h.ReceivedFull = unquoted(m.Sent), unquoted(m.Received)
	return h
}

// around quotes b (which starts at offset start) from lo to hi with the
// byte at off apart.
func around(b []byte, start, off, lo, hi int) bytesAround {
	cut := func(from, to int) []byte {
		from, to = max(from-start, 0), min(to-start, len(b))
		if from >= to {
			return nil
		}
		return b[from:to]
	}
	a := bytesAround{Before: unquoted(cut(lo, off)), At: unquoted(cut(off, off+1)), After: unquoted(cut(off+1, hi))}
	if lo > 0 {
		a.Lead = fmt.Sprintf("…(%d bytes) ", lo)
	}
	if hi-start < len(b) {
		a.Trail = " …"
	}
	if off-start >= len(b) {
		a.At = "∅" // nothing there: the data ends before the difference
	}
	return a
}

func unquoted(b []byte) string {
	q := reply.Quote(b)
	return q[1 : len(q)-1]
}

// htmlTree is a process tree as nested lists.
type htmlTree struct {
	Label string
	At    time.Duration
	Root  *treeNode
	Count int
	More  int
}

type treeNode struct {
	Process
	Kids []*treeNode
}

func buildTree(t ProcessTree) htmlTree {
	h := htmlTree{Label: t.Label, At: t.At, Count: len(t.Procs), More: t.More}
	nodes := map[int]*treeNode{}
	for _, p := range t.Procs {
		nodes[p.PID] = &treeNode{Process: p}
	}
	for i, p := range t.Procs {
		n := nodes[p.PID]
		if parent, ok := nodes[p.PPID]; ok && i > 0 {
			parent.Kids = append(parent.Kids, n)
		} else if h.Root == nil {
			h.Root = n
		}
	}
	return h
}
