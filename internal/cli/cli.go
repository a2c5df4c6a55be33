// Package cli is the echoconform command line: flags, targets, reports
// and exit status. cmd/echoconform is a thin main around Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/eventloop"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
)

// Run runs echoconform with args (without the program name) and returns
// the exit status: 0 every MUST holds (and with -strict every SHOULD), 1 a
// requirement failed, 2 the harness could not run. The binary must call
// forking.Init and conformance.Init first.
//
// It sets the garbage collector's target to 400%: a run allocates tens of
// MiB per check for data it sends and the echo it reads, and at the
// default the collector ran so often that it took a tenth of the run's CPU.
func Run(args []string, stdout, stderr io.Writer) int {
	debug.SetGCPercent(400)
	return run(args, stdout, stderr)
}

const usageText = `usage:
  echoconform [flags] -- COMMAND [ARG...]   start COMMAND whenever a check needs a fresh server;
                                            {port} and {addr} in an ARG become a free port on
                                            127.0.0.1 and 127.0.0.1:PORT, and $PORT is set;
                                            or {sock} becomes a fresh Unix socket path in a
                                            private directory, and $SOCK is set
  echoconform [flags] -addr HOST:PORT       check a server that is already running
  echoconform [flags] -addr unix:/PATH      the same, on a Unix-domain stream socket
  echoconform [flags]                       check the built-in reference servers

examples:
  echoconform -protocol oneshot -prefix '{pid}: ' -model fork -- python3 server.py {port}
  echoconform -model fork -- socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork EXEC:cat
  echoconform -addr 127.0.0.1:7007 -run 'STREAM|CONC'
  echoconform -model fork -- socat UNIX-LISTEN:{sock},fork EXEC:cat
  echoconform -json > report.json
  echoconform -html report.html -- ./server {port}   one page to open or send, transcripts drawn

flags:
`

// config is the parsed command line.
type config struct {
	protocol     echo.Protocol
	prefix       echo.Template
	model        conformance.Model
	maxMsg       int
	maxLine      int
	finalLine    conformance.FinalLine
	eventThreads int
	strict       bool
	run, skip    *regexp.Regexp
	json         bool
	junit        string
	html         string
	seed         uint64
	checks       int
	timeout      time.Duration
	timeScale    float64
	concurrency  int
	verbose      bool
	addr         string
	argv         []string
	flags        []string // as given, for the reproduction command
	args         []string // the whole command line, for the HTML report
	set          map[string]bool
}

// usageError is a bad command line: one line, exit 2.
type usageError struct{ msg string }

// Error is the message on one line: what the user typed is echoed in it,
// and neither the flag nor the regexp package escapes a newline.
func (e usageError) Error() string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, e.msg)
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("echoconform", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		protocol  = fs.String("protocol", "stream", "the server's protocol: stream (RFC 862), oneshot (one message, one reply, close) or line (a line at a time)")
		prefix    = fs.String("prefix", "", "the prefix template the server writes once per connection: {pid}, {ppid}, e.g. '{pid}: ' (default none)")
		maxMsg    = fs.Int("max-msg", echo.DefaultMaxMsg, "oneshot: the largest message the server reads")
		maxLine   = fs.Int("max-line", echo.DefaultMaxLine, "line: the longest line, newline included, the server echoes whole")
		lineEOF   = fs.String("line-eof", "echo", "line: what the server does with a last line without a newline at the client's half-close: echo or drop")
		model     = fs.String("model", "any", "the server's concurrency model: fork, thread, event or any (check none)")
		evThreads = fs.Int("event-threads", 0, "event: threads the server may start besides the ones it runs at rest (a runtime's helpers)")
		strict    = fs.Bool("strict", false, "count failed SHOULDs as failures (exit 1)")
		runRE     = fs.String("run", "", "check only the requirements whose ID matches this regexp, e.g. 'STREAM|SHUT-3'")
		skipRE    = fs.String("skip", "", "leave out the requirements whose ID matches this regexp")
		jsonOut   = fs.Bool("json", false, "write the report as JSON on stdout")
		junit     = fs.String("junit", "", "also write a JUnit XML report to this file")
		htmlOut   = fs.String("html", "", "also write an HTML report to this file: one page that opens offline, with the transcripts drawn")
		seed      = fs.Uint64("seed", 0, "seed of the property checks, to reproduce a failure (0: random)")
		checks    = fs.Int("checks", 20, "cases each property check tries")
		timeout   = fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
		timeScale = fs.Float64("time-scale", 1, "multiply every per-operation deadline, for slow machines and debuggers")
		conc      = fs.Int("concurrency", 64, "connections CONC-2 holds open at once")
		verbose   = fs.Bool("v", false, "show every requirement's details and the server's output")
		addr      = fs.String("addr", "", "attach to a server already listening on HOST:PORT, or on a Unix socket: unix:/PATH")
	)
	fs.Usage = func() {} // a bad flag is one line; -h prints the help below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	c := &config{eventThreads: *evThreads, maxMsg: *maxMsg, maxLine: *maxLine, finalLine: conformance.FinalLine(*lineEOF), strict: *strict, json: *jsonOut, junit: *junit, html: *htmlOut, seed: *seed, checks: *checks,
		timeout: *timeout, timeScale: *timeScale, concurrency: *conc, verbose: *verbose, addr: *addr, argv: fs.Args(), args: args}
	c.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		c.set[f.Name] = true
		if f.Name != "json" && f.Name != "junit" && f.Name != "html" && f.Name != "seed" && f.Name != "run" && f.Name != "v" {
			c.flags = append(c.flags, "-"+f.Name+"="+f.Value.String())
		}
	})
	var err error
	if c.protocol, err = echo.ParseProtocol(*protocol); err != nil {
		return nil, usageError{"-protocol: " + err.Error()}
	}
	if c.prefix, err = echo.ParseTemplate(*prefix); err != nil {
		return nil, usageError{"-prefix: " + err.Error()}
	}
	if c.model, err = conformance.ParseModel(*model); err != nil {
		return nil, usageError{"-model: " + err.Error()}
	}
	switch {
	case c.maxMsg <= 0:
		return nil, usageError{"-max-msg must be positive"}
	case c.eventThreads < 0:
		return nil, usageError{"-event-threads must not be negative"}
	case c.maxLine <= 0:
		return nil, usageError{"-max-line must be positive"}
	case c.finalLine != conformance.FinalLineEcho && c.finalLine != conformance.FinalLineDrop:
		return nil, usageError{fmt.Sprintf("-line-eof: unknown value %q (want echo or drop)", *lineEOF)}
	case c.checks <= 0:
		return nil, usageError{"-checks must be positive"}
	case c.timeout <= 0:
		return nil, usageError{"-timeout must be positive"}
	case c.timeScale <= 0:
		return nil, usageError{"-time-scale must be positive"}
	case c.concurrency < 4:
		return nil, usageError{"-concurrency must be at least 4"}
	case c.addr != "" && len(c.argv) > 0:
		return nil, usageError{"give either -addr or a command after --, not both"}
	}
	if len(c.argv) > 0 {
		if err := conformance.Command(c.argv...).Validate(); err != nil {
			return nil, usageError{err.Error()}
		}
	}
	if c.addr != "" {
		if err := conformance.Address(c.addr).Validate(); err != nil {
			return nil, usageError{"-addr: " + err.Error()}
		}
	}
	if c.run, err = idRegexp("-run", *runRE); err != nil {
		return nil, err
	}
	if c.skip, err = idRegexp("-skip", *skipRE); err != nil {
		return nil, err
	}
	return c, nil
}

// idRegexp compiles a requirement filter and rejects one that matches no
// requirement: a typo must not turn into an empty, green run.
func idRegexp(name, s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", name, err)}
	}
	var ids []string
	for _, r := range conformance.Requirements() {
		if re.MatchString(r.ID) {
			return re, nil
		}
		ids = append(ids, r.ID)
	}
	return nil, usageError{fmt.Sprintf("%s %q matches no requirement ID (IDs: %s)", name, s, strings.Join(ids, " "))}
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "echoconform: %v (see echoconform -h)\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	var reports []*conformance.Report
	var runErr error
	targets := c.targets()
	prog := newProgress(stderr, isTerminal(stderr), c.selected()*len(targets))
	for _, tg := range targets {
		rep, err := conformance.Check(ctx, tg.target, c.options(tg, prog)...)
		if rep != nil {
			reports = append(reports, rep)
		}
		if err != nil {
			runErr = err
			break
		}
	}
	// The report replaces the live status line.
	prog.stop()
	if runErr != nil && errors.Is(runErr, conformance.ErrNotReady) && checkedNothing(reports) {
		// Nothing was checked: no report, one line.
		fmt.Fprintf(stderr, "echoconform: %v\n", oneLine(runErr))
		return 2
	}
	if err := c.write(reports, runErr, stdout); err != nil {
		fmt.Fprintf(stderr, "echoconform: %v\n", err)
		return 2
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "echoconform: %v\n", oneLine(runErr))
		return 2
	}
	for _, rep := range reports {
		if len(rep.Failed(c.strict)) > 0 {
			return 1
		}
	}
	return 0
}

func checkedNothing(reports []*conformance.Report) bool {
	for _, rep := range reports {
		for _, r := range rep.Results {
			if r.Verdict == conformance.Pass || r.Verdict == conformance.Fail {
				return false
			}
		}
	}
	return true
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// namedTarget is one server to check and what it declares.
type namedTarget struct {
	target   conformance.Target
	model    conformance.Model
	protocol echo.Protocol
	prefix   echo.Template
}

// referencePrefix is the template the references are checked with when
// -prefix is not given, so that every PREFIX check applies.
var referencePrefix = echo.MustParseTemplate("{pid}/{ppid}: ")

// targets is what the command line names: a command, an address, or the
// reference servers, each model declared as itself, in every protocol
// unless -protocol is given.
func (c *config) targets() []namedTarget {
	switch {
	case len(c.argv) > 0:
		return []namedTarget{{conformance.Command(c.argv...), c.model, c.protocol, c.prefix}}
	case c.addr != "":
		return []namedTarget{{conformance.Address(c.addr), c.model, c.protocol, c.prefix}}
	}
	protocols := echo.Protocols
	if c.set["protocol"] {
		protocols = []echo.Protocol{c.protocol}
	}
	prefix := referencePrefix
	if c.set["prefix"] {
		prefix = c.prefix
	}
	var out []namedTarget
	for _, p := range protocols {
		cfg := echo.Config{Protocol: p, Prefix: prefix, MaxMsg: c.maxMsg, MaxLine: c.maxLine}
		if c.model == conformance.ModelAny || c.model == conformance.ModelThread {
			out = append(out, namedTarget{conformance.InProcess("threading reference", func() echo.Server { return threading.New(cfg) }), conformance.ModelThread, p, prefix})
		}
		if c.model == conformance.ModelAny || c.model == conformance.ModelFork {
			child := forking.ChildBeside()
			out = append(out, namedTarget{conformance.InProcess("forking reference", func() echo.Server {
				f := forking.New(cfg)
				f.Child = child
				return f
			}), conformance.ModelFork, p, prefix})
		}
		if c.model == conformance.ModelAny || c.model == conformance.ModelEvent {
			out = append(out, namedTarget{conformance.InProcess("event-loop reference", func() echo.Server { return eventloop.New(cfg) }), conformance.ModelEvent, p, prefix})
		}
	}
	return out
}

func (c *config) options(tg namedTarget, progress io.Writer) []conformance.Option {
	opts := []conformance.Option{
		conformance.ExpectProtocol(tg.protocol),
		conformance.ExpectPrefix(tg.prefix),
		conformance.ExpectMaxMsg(c.maxMsg),
		conformance.ExpectMaxLine(c.maxLine),
		conformance.ExpectFinalLine(c.finalLine),
		conformance.ExpectModel(tg.model),
		conformance.ExpectEventThreads(c.eventThreads),
		conformance.TimeScale(c.timeScale),
		conformance.Concurrency(c.concurrency),
		conformance.Progress(progress),
		conformance.Checks(c.checks),
		conformance.Seed(c.seed),
	}
	if c.run != nil {
		opts = append(opts, conformance.Only(c.run))
	}
	if c.skip != nil {
		opts = append(opts, conformance.Exclude(c.skip))
	}
	return opts
}

// selected counts the requirements the run checks on each server.
func (c *config) selected() int {
	n := 0
	for _, r := range conformance.Requirements() {
		if (c.run == nil || c.run.MatchString(r.ID)) && (c.skip == nil || !c.skip.MatchString(r.ID)) {
			n++
		}
	}
	return n
}

// isTerminal reports whether w is a terminal, for colour.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
