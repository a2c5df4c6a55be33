package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/echoconform/echoconform/echo"
)

// Verdict is the outcome of one requirement.
type Verdict string

const (
	Pass  Verdict = "PASS"
	Fail  Verdict = "FAIL"
	Skip  Verdict = "SKIP"  // does not apply to this target or these options
	Error Verdict = "ERROR" // the harness could not check it (server not ready, run timed out)
)

// Result is the outcome of one requirement.
type Result struct {
	ID             string        `json:"id"`
	Level          Level         `json:"level"`
	Title          string        `json:"title"`
	Verdict        Verdict       `json:"verdict"`
	Duration       time.Duration `json:"duration_ns"`
	Message        string        `json:"message,omitempty"`
	Counterexample string        `json:"counterexample,omitempty"`
	Seed           uint64        `json:"seed,omitempty"`
	Transcript     []Event       `json:"transcript,omitempty"`
	// TranscriptDropped counts the events left out of Transcript, which
	// keeps the first and the last of a long check, between the two.
	TranscriptDropped int    `json:"transcript_dropped,omitempty"`
	ServerOutput      string `json:"server_output,omitempty"`
	// What the drawings of a report need (the HTML report; JSON carries
	// them too): the server process, the process that handled each
	// connection where a reply named it, the last reply that was not what
	// was sent, and the check's curves.
	ServerPID int `json:"server_pid,omitempty"`
	// ServerAddr is where the check's server listened: HOST:PORT, or
	// unix:/path (a fresh one for every server the harness starts).
	ServerAddr string     `json:"server_addr,omitempty"`
	Conns      []ConnInfo `json:"conns,omitempty"`
	Mismatch   *Mismatch  `json:"mismatch,omitempty"`
	Figures    *Figures   `json:"figures,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Target string `json:"target"`
	// Transport is how the harness reached the server: "tcp" or "unix".
	Transport string        `json:"transport"`
	Options   ReportOptions `json:"options"`
	Results   []Result      `json:"results"`
	Duration  time.Duration `json:"duration_ns"`
}

// ReportOptions are the declarations and settings a run used.
type ReportOptions struct {
	Protocol string `json:"protocol"`
	Prefix   string `json:"prefix"`
	MaxMsg   int    `json:"max_msg"`
	// A line server's declarations (line protocol only).
	MaxLine   int       `json:"max_line,omitempty"`
	FinalLine FinalLine `json:"line_eof,omitempty"`
	Model     Model     `json:"model"`
	// Threads an event server may start besides (model event only).
	EventThreads int     `json:"event_threads,omitempty"`
	Concurrency  int     `json:"concurrency"`
	TimeScale    float64 `json:"time_scale"`
	// The property checks' settings: random cases after the fixed ones,
	// the seed (0: a random one each check; a failure names its own), and
	// the bound on shrinking.
	Checks     int           `json:"checks"`
	Seed       uint64        `json:"seed"`
	ShrinkTime time.Duration `json:"shrink_time_ns"`
}

// Failed returns the results that failed: MUSTs, and SHOULDs too when strict.
func (r *Report) Failed(strict bool) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Verdict == Fail && (res.Level == MUST || strict) {
			out = append(out, res)
		}
	}
	return out
}

// Check runs every selected requirement of SPEC.md against target and
// returns the report. The error is non-nil only when the harness could not
// run: bad options, or a server that never became ready (ErrNotReady).
// Verdicts of the server are in the report, never in the error.
func Check(ctx context.Context, target Target, opts ...Option) (*Report, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	tr, err := target.kind.transport(&o)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Target: target.String(), Transport: tr.name(), Options: o.report()}
	var errs []error
	for _, req := range requirements {
		if !o.selected(req.ID) {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if o.progress != nil {
			fmt.Fprintf(o.progress, "%-10s ...\n", req.ID)
		}
		res, err := runOne(ctx, target, &o, req, "echoconform/"+req.ID)
		if o.progress != nil {
			fmt.Fprintf(o.progress, "%-10s %-5s %v\n", req.ID, res.Verdict, res.Duration.Round(time.Millisecond))
		}
		rep.Results = append(rep.Results, res)
		if errors.Is(err, ErrNotReady) {
			errs = append(errs, err)
			break // it will not start for the next check either
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", req.ID, err))
		}
	}
	rep.Duration = time.Since(start)
	return rep, errors.Join(errs...)
}

// Test runs every requirement of SPEC.md against target as a subtest named
// by its ID, so that -run 'Conformance/STREAM' selects. A failed MUST fails
// the subtest; a failed SHOULD is logged (it fails too with Strict).
//
// Typical usage inside a test is:
//
//	conformance.Test(t, conformance.InProcess("mine", func() echo.Server { return mine.New() }),
//		conformance.ExpectPrefix(echo.MustParseTemplate("{pid}: ")))
//
// Test must not run in parallel with other tests of the same process: the
// leak checks of an in-process server read the whole process.
func Test(t *testing.T, target Target, opts ...Option) {
	t.Helper()
	o, err := buildOptions(opts)
	if err != nil {
		t.Fatalf("echoconform: %v", err)
	}
	if _, err := target.kind.transport(&o); err != nil {
		t.Fatalf("echoconform: %v", err)
	}
	notReady := false
	for _, req := range requirements {
		if !o.selected(req.ID) {
			continue
		}
		if notReady {
			break // as Check does: it will not start for the next check either
		}
		t.Run(req.ID, func(t *testing.T) {
			res, err := runOne(t.Context(), target, &o, req, t.Name())
			switch {
			case errors.Is(err, ErrNotReady):
				notReady = true
				t.Fatalf("%s: the server never became ready, so no requirement was checked: %v", req.ID, err)
			case err != nil:
				t.Fatalf("%s: harness error: %v", req.ID, err)
			case res.Verdict == Skip:
				t.Skipf("%s does not apply: %s", req.ID, res.Message)
			case res.Verdict == Fail && (req.Level == MUST || o.strict):
				t.Errorf("%s", FormatResult(res))
			case res.Verdict == Fail:
				t.Logf("SHOULD not met (not a failure without Strict):\n%s", FormatResult(res))
			default:
				if res.Message != "" {
					t.Log(res.Message)
				}
			}
		})
	}
}

// FormatResult renders a result the way a person reads it: a first line
// "ID VERDICT (LEVEL): title", then, indented, the requirement, what went
// wrong, the shrunk counterexample, the transcript and the
// server's last output.
func FormatResult(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s): %s\n", r.ID, r.Verdict, r.Level, r.Title)
	if req, ok := requirement(r.ID); ok && r.Verdict == Fail {
		fmt.Fprintf(&b, "  requirement: %s\n", req.Text)
	}
	if r.Message != "" {
		fmt.Fprintf(&b, "  %s\n", indent(r.Message, "  "))
	}
	if r.Counterexample != "" {
		fmt.Fprintf(&b, "  minimal counterexample:\n    %s\n", indent(r.Counterexample, "    "))
	}
	if len(r.Transcript) > 0 && r.Verdict == Fail {
		// The last events tell how it ended; the JSON and HTML reports
		// have the rest.
		events := r.Transcript
		if len(events) > textEvents {
			events = events[len(events)-textEvents:]
		}
		b.WriteString("  transcript (last events):\n")
		for _, e := range events {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	if r.ServerOutput != "" && r.Verdict == Fail {
		fmt.Fprintf(&b, "  %s\n", indent(strings.TrimPrefix(r.ServerOutput, "\n"), "  "))
	}
	return strings.TrimRight(b.String(), "\n")
}

// textEvents is how many of a transcript's last events a text report shows.
const textEvents = 64

func indent(s, pre string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pre)
}

func (o *options) report() ReportOptions {
	rs := o.rapidSettings()
	r := ReportOptions{Protocol: o.protocol.String(), Prefix: o.prefix.String(), MaxMsg: o.maxMsg,
		Model: o.model, Concurrency: o.concurrency, TimeScale: o.timeScale,
		Checks: rs.checks, Seed: rs.seed, ShrinkTime: rs.shrinkTime}
	if o.model == ModelEvent {
		r.EventThreads = o.eventThreads
	}
	if _, ok := o.proto.(lineProtocol); ok {
		r.MaxLine, r.FinalLine = o.maxLine, o.finalLine
	}
	return r
}

// checker is what a check works with: the options, a fresh server, client
// connections with a transcript, and a rapid.TB that records the outcome.
type checker struct {
	rapid.TB
	rec    *recorder
	req    Requirement
	o      *options
	dl     deadlines
	target Target
	// ctx ends when the check must stop: the run's context, the watchdog,
	// or the server's death (ctx's cause says which).
	ctx    context.Context
	cancel context.CancelCauseFunc
	ends   bool // the check ends the server itself (SHUT): no death watch

	mu    sync.Mutex
	ended bool // the check is over: server() starts nothing more
	in    *instance
	conns []*conn
	tr    transcript
	notes []string
	death string // how the server died during the check
	fig   Figures
}

// server returns the check's server, starting it on first use. A server
// that does not start ends the check with a harness error.
func (ck *checker) server() *instance {
	ck.mu.Lock()
	if ck.ended {
		// The watchdog ended the check: no new server may outlive it.
		ck.mu.Unlock()
		runtime.Goexit()
	}
	if ck.in == nil {
		in, err := ck.target.kind.start(ck.ctx, ck.o)
		if err != nil {
			ck.mu.Unlock()
			ck.rec.harnessError(err)
			runtime.Goexit()
		}
		ck.in = in
		if !ck.ends {
			go ck.watch(in)
		}
	}
	in := ck.in
	ck.mu.Unlock()
	return in
}

// fresh ends the current server, so that the next server() starts another.
func (ck *checker) fresh() {
	ck.closeConns()
	ck.mu.Lock()
	in := ck.in
	ck.in = nil
	ck.mu.Unlock()
	if in != nil {
		in.close()
	}
}

func (ck *checker) closeConns() {
	ck.mu.Lock()
	conns := ck.conns
	ck.conns = nil
	ck.mu.Unlock()
	for _, c := range conns {
		_ = c.c.Close()
	}
}

// Validate reports what is wrong with the target before any check runs:
// a command that names addresses of two transports ({port} and {sock}),
// an address or options that disagree.
func (t Target) Validate(opts ...Option) error {
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	_, err = t.kind.transport(&o)
	return err
}

// note adds a line to a passing result's message (e.g. a measured level).
func (ck *checker) note(format string, a ...any) {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.notes = append(ck.notes, fmt.Sprintf(format, a...))
}

// skip ends the check: the requirement does not apply.
func (ck *checker) skip(format string, a ...any) { ck.Skipf(format, a...) }

// check is one requirement's implementation: it judges only its own ID.
type check struct {
	applies func(*checker) string // a reason when it does not apply
	run     func(*checker)
	ends    bool // the check ends the server itself (shutdown): its exit is no death
}

// checks maps every requirement ID of SPEC.md to its check; a test keeps
// the two in step.
var checks = map[string]check{}

func register(id string, c check) {
	if _, ok := checks[id]; ok {
		panic("conformance: two checks for " + id)
	}
	checks[id] = c
}

var (
	seedRE  = regexp.MustCompile(`-rapid\.seed=(\d+)`)
	flakyRE = regexp.MustCompile(`(?s)flaky test, can not reproduce a failure\n(To try to reproduce, specify [^\n]*)\n.*Original traceback \((.*?)\):\n`)
)

// runOne runs one requirement's check on its own goroutine with a
// watchdog, and turns what the recorder saw into a Result.
func runOne(ctx context.Context, target Target, o *options, req Requirement, name string) (Result, error) {
	start := time.Now()
	res := Result{ID: req.ID, Level: req.Level, Title: req.Title}
	c, ok := checks[req.ID]
	if !ok {
		res.Verdict, res.Message = Error, "no check implements "+req.ID
		return res, errors.New(res.Message)
	}
	if err := ctx.Err(); err != nil {
		res.Verdict, res.Message = Error, "not run: "+err.Error()
		return res, err
	}
	rec := &recorder{name: name}
	dl := o.deadlines()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ck := &checker{TB: rec, rec: rec, req: req, o: o, dl: dl, target: target, ctx: cctx, cancel: cancel, ends: c.ends}
	ck.tr.start = start
	if why := c.applies(ck); why != "" {
		res.Verdict, res.Message, res.Duration = Skip, why, time.Since(start)
		return res, nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				rec.harnessError(fmt.Errorf("check panicked: %v", p))
			}
		}()
		c.run(ck)
	}()
	watchdog := time.NewTimer(dl.watchdog)
	defer watchdog.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		rec.harnessError(fmt.Errorf("the run's time ran out during this check: %v", ctx.Err()))
	case <-watchdog.C:
		rec.Errorf("the check did not finish within %v: the server kept it waiting", dl.watchdog)
	}
	// A check still running is cancelled: no new server for it, its
	// connections closed, its waits ended; then it is waited for.
	ck.mu.Lock()
	ck.ended = true
	in := ck.in
	ck.mu.Unlock()
	ck.cancel(errCheckOver)
	ck.closeConns()
	select {
	case <-done:
	default:
		ck.fresh()
		select {
		case <-done:
		case <-time.After(dl.D):
			rec.harnessError(fmt.Errorf("the check did not stop within %v of being cancelled", dl.D))
		}
	}
	var output, death string
	if in != nil {
		res.ServerPID = in.pid
		if in.ep != nil {
			res.ServerAddr = in.ep.String()
		}
	}
	if in != nil && rec.Failed() {
		death = ck.diedOf() // before fresh() ends the server for good
	}
	if in != nil {
		// The server outlived the check unless it died of it: look once
		// more, now that the check's connections are closed.
		if !ck.ends && !rec.isSkipped() && rec.harnessErrOf() == nil {
			o.alive.after(ck, in)
		}
		output = in.excerpt()
	}
	ck.fresh()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.Duration = time.Since(start)
	res.Transcript, res.TranscriptDropped = ck.tr.snapshot()
	res.Conns, res.Figures = ck.tr.conns(), ck.figures()
	switch {
	case rec.harnessErr != nil:
		res.Verdict, res.Message = Error, rec.harnessErr.Error()
		return res, rec.harnessErr
	case rec.failed:
		res.Verdict = Fail
		res.Message, res.Counterexample = rec.failure()
		if death != "" {
			res.Message = death + "\n" + res.Message
		}
		if m := seedRE.FindStringSubmatch(res.Message); m != nil {
			res.Seed, _ = strconv.ParseUint(m[1], 10, 64)
		}
		res.ServerOutput = output
		res.Mismatch = ck.tr.lastMismatch()
	case rec.skipped:
		res.Verdict, res.Message = Skip, strings.Join(rec.logs, "\n")
	default:
		res.Verdict = Pass
		res.Message = strings.Join(ck.notes, "\n")
	}
	return res, nil
}

// recorder is the rapid.TB every check reports to, so that the CLI and Test
// share one implementation of each check and a SHOULD can be reported
// without failing a go test.
type recorder struct {
	name       string
	mu         sync.Mutex
	failed     bool
	skipped    bool
	errs       []string
	logs       []string
	harnessErr error
}

const maxLogs = 200

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return r.name }
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.logs) < maxLogs {
		r.logs = append(r.logs, fmt.Sprintf(format, args...))
	}
}
func (r *recorder) Log(args ...any) { r.Logf("%s", fmt.Sprintln(args...)) }
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	// What rapid logs after its failure message is the shrunk case.
	r.logs = r.logs[:0]
}
func (r *recorder) Error(args ...any) {
	r.Errorf("%s", strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Error(args...); runtime.Goexit() }
func (r *recorder) FailNow()          { r.Fail(); runtime.Goexit() }
func (r *recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
func (r *recorder) Skipf(format string, args ...any) {
	r.Logf(format, args...)
	r.SkipNow()
}
func (r *recorder) Skip(args ...any) { r.Log(args...); r.SkipNow() }
func (r *recorder) SkipNow() {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}

// lastError is the last failure recorded, or "".
func (r *recorder) lastError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return ""
	}
	return r.errs[len(r.errs)-1]
}

func (r *recorder) harnessError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.harnessErr == nil {
		r.harnessErr = err
	}
}

func (r *recorder) harnessErrOf() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.harnessErr
}

func (r *recorder) isSkipped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

// failure splits what was recorded into the message and the shrunk
// counterexample that rapid logged after it.
func (r *recorder) failure() (string, string) {
	msg := strings.Join(r.errs, "\n")
	msg = strings.TrimSuffix(msg, "\nFailed test output:")
	// A network server can fail once and pass the replay; rapid then calls
	// the test flaky. Say what failed first, then that.
	if m := flakyRE.FindStringSubmatch(msg); m != nil {
		msg = m[2] + "\n(the failure did not repeat when replayed: the server behaves nondeterministically; " + m[1] + ")"
	}
	return msg, strings.TrimSpace(strings.Join(r.logs, "\n"))
}

// expectEcho reads the reply to msg on c and checks it is the prefix
// followed by msg. It does not wait for EOF.
func (ck *checker) expectEcho(c *conn, msg []byte) (echo.Values, error) {
	got, err := ck.readEcho(c, nil, msg, c.d)
	return ck.verifyEcho(c, got, msg, err)
}

// readEcho reads onto got until the reply to msg is complete, goes wrong,
// ends, or wait passes.
func (ck *checker) readEcho(c *conn, got, msg []byte, wait time.Duration) ([]byte, error) {
	t := ck.o.prefix
	return c.readUntil(got, 1<<30, wait, func(b []byte) bool {
		_, n, err := t.Match(b)
		if errors.Is(err, echo.ErrShort) {
			return false
		}
		return err != nil || len(b) >= n+len(msg)
	})
}

func (ck *checker) verifyEcho(c *conn, got, msg []byte, err error) (echo.Values, error) {
	v, verr := c.tr.verify(c.id, ck.o.prefix, got, msg)
	if verr != nil {
		if err != nil && err != io.EOF {
			return v, fmt.Errorf("conn %d: %v, then %v", c.id, verr, err)
		}
		return v, fmt.Errorf("conn %d: %v", c.id, verr)
	}
	return v, nil
}
