package conformance_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/mutant"
	"github.com/echoconform/echoconform/internal/testbin"
)

// zooCase is one row of the mutant zoo: a mutant, how it runs, and the
// requirements the harness must FAIL for it, no more and no fewer.
type zooCase struct {
	mutant   string
	model    conformance.Model
	protocol echo.Protocol
	prefix   string // the template the server writes and declares
	// finalLine is declared for line servers ("": the default, echo).
	finalLine conformance.FinalLine
	// eventThreads is declared for model event: a Go server's runtime
	// starts a few threads of its own as connections come.
	eventThreads int
	// inProcess runs the mutant in this process (mutant.New), where the
	// harness sees goroutines; rows run as commands otherwise.
	inProcess bool
	// unix runs it on a Unix-domain socket: a command given {sock}, or
	// in process with conformance.Unix().
	unix bool

	// want is every requirement (MUST or SHOULD) the fault breaks, and so
	// the exact set of IDs that must FAIL. Some are collateral: a check
	// that verifies exact replies fails with any fault that alters them.
	want []string

	// Known harness gaps, each written up where it is set: missed are IDs
	// in want that the harness does not FAIL; falseAlarm are IDs it FAILs
	// although the server meets them. The row asserts the harness's actual
	// behaviour, want − missed + falseAlarm, exactly: when a gap is fixed
	// the row fails and says so.
	missed, falseAlarm []string

	// shrunk maps an ID to what its message or minimal counterexample
	// must show, for faults that make the minimal failing case exact
	// (the fixed boundary cases find it first, in every run).
	shrunk map[string]*regexp.Regexp

	// slow orders the start: rows whose checks wait out long bounds start
	// first, higher values before lower.
	slow int
	// short marks the representative rows that go test -short runs.
	short bool
}

// The prefixes of the zoo.
const (
	zooPID     = "{pid}: "        // PyMOTW, the Cookbook
	zooPIDPPID = "{pid}/{ppid}: " // both placeholders
	zooSeed    = "{ppid} :"       // the seed program
)

var zooCases = []zooCase{
	// Correct servers, some slow: every requirement passes.
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, short: true},
	{mutant: "correct", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPIDPPID},
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPIDPPID},
	{mutant: "slow-listen", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID},
	{mutant: "slow-write", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID},
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, inProcess: true},

	// Stream data path.
	// STREAM-1 shrinks the fault to its minimal case: one connection,
	// 4097 bytes.
	{mutant: "drop-byte-4096", model: conformance.ModelThread, protocol: echo.Stream, prefix: "",
		slow: 1, short: true,
		want:   []string{"STREAM-1", "STREAM-2", "STREAM-3", "STREAM-4", "CONC-3"},
		shrunk: map[string]*regexp.Regexp{"STREAM-1": regexp.MustCompile(`\b4097 bytes sent in all: only 4096 of the 4097 bytes`)}},
	{mutant: "cut-after-1024", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want:   []string{"STREAM-1", "STREAM-2", "STREAM-3", "STREAM-4", "CONC-3"},
		shrunk: map[string]*regexp.Regexp{"STREAM-1": regexp.MustCompile(`\b1025 bytes sent in all: only 1024 of the 1025 bytes`)}},
	{mutant: "drop-nul", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"STREAM-1", "STREAM-2", "STREAM-3", "STREAM-4", "CONC-3"}},
	// Every check that compares a reply to a message with "\n" in it.
	{mutant: "crlf", model: conformance.ModelThread, protocol: echo.Stream, prefix: "",
		want: []string{"STREAM-1", "STREAM-2", "STREAM-3", "STREAM-4", "PREFIX-1", "CONC-1", "CONC-2", "CONC-3", "CONC-4",
			"ROBUST-1", "ROBUST-2", "ROBUST-3", "SHUT-3", "ROBUST-4"}},
	{mutant: "dup-chunk-8192", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"STREAM-1", "STREAM-2", "STREAM-3", "STREAM-4"}},
	{mutant: "prefix-every-chunk", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"STREAM-1", "STREAM-2", "STREAM-3", "STREAM-4", "CONC-3", "ROBUST-3"}},
	// CONC-2 is the one check besides STREAM-2 that waits for a stream
	// echo without half-closing.
	{mutant: "echo-on-eof", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 1,
		want: []string{"STREAM-2", "CONC-2"}},
	// The connections it holds open after the client is gone are leaked
	// descriptors.
	{mutant: "no-fin", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 2,
		want: []string{"STREAM-3", "PREFIX-4", "LEAK-2"}},
	{mutant: "reset-close", model: conformance.ModelThread, protocol: echo.Stream, prefix: "",
		want: []string{"STREAM-3", "PREFIX-4"}},

	// The prefix.
	{mutant: "pid-plus-one", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPIDPPID,
		want: []string{"PREFIX-2"}},
	{mutant: "server-pid-in-child", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPIDPPID,
		want: []string{"PREFIX-2"}},
	{mutant: "ppid-self", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPIDPPID,
		want: []string{"PREFIX-3"}},
	{mutant: "prefix-no-space", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPID,
		want: []string{"ONESHOT-1", "ONESHOT-2", "ONESHOT-3", "ONESHOT-4", "ONESHOT-5", "PREFIX-1", "PREFIX-2", "PREFIX-4",
			"CONC-1", "CONC-2", "CONC-3", "CONC-4", "ROBUST-1", "ROBUST-2", "ROBUST-3", "SHUT-3"}},

	// Concurrency. The checks that need several connections accepted at
	// once (PREFIX-2, MODEL-1) fail too: the thread model is "every
	// connection handled concurrently", and PREFIX-2 cannot get its
	// replies.
	{mutant: "cross-talk", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"STREAM-1", "STREAM-4", "PREFIX-2", "CONC-2", "CONC-3", "CONC-4", "ROBUST-1", "ROBUST-2", "ROBUST-3"}},
	{mutant: "serial", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 2,
		want: []string{"STREAM-1", "PREFIX-2", "MODEL-1", "CONC-1", "CONC-2", "ROBUST-1", "ROBUST-2", "ROBUST-3", "ROBUST-4"}},
	{mutant: "cap-2", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 2,
		want: []string{"STREAM-1", "PREFIX-2", "MODEL-1", "CONC-1", "CONC-2"}},
	{mutant: "accept-blocked-by-idle", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 2,
		want: []string{"STREAM-1", "PREFIX-2", "MODEL-1", "CONC-1", "CONC-2", "ROBUST-1", "ROBUST-2"}},

	// Robustness and leaks.
	// STREAM-1's state machine resets connections too. No prefix: with
	// one, the leak rounds (leak.go serveOne) return on the prefix alone
	// and close with the echo unread, a reset that crashes this server;
	// the rounds then end in ck.Fatalf while leakRounds holds the leak
	// cache's mutex, and LEAK-2..4 each wait out the 90 s × time scale
	// watchdog (a harness bug; the row would FAIL all four LEAK checks).
	// An empty connection: rapid's state machine opens and closes one
	// at once (STREAM-1), and PREFIX-4 checks one on purpose.
	{mutant: "crash-on-empty", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"STREAM-1", "PREFIX-4", "ALIVE-1"}},
	// A panic on the empty oneshot message: PREFIX-4 sends one; ALIVE-1
	// names it, and its own empty connection kills the server too.
	{mutant: "crash-on-empty", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPID, short: true,
		want:   []string{"PREFIX-4", "ALIVE-1"},
		shrunk: map[string]*regexp.Regexp{"ALIVE-1": regexp.MustCompile(`(?s)PREFIX-4: the server died (during|of) this check.*: the server process \d+ exited \(exit status 2\)`)}},
	{mutant: "crash-on-reset", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: "",
		want:   []string{"ROBUST-2", "ALIVE-1"},
		shrunk: map[string]*regexp.Regexp{"ALIVE-1": regexp.MustCompile(`ROBUST-2: the server died (during|of) this check.*: the server process \d+ exited \(exit status 3\)`)}},
	// A loop written as a single accept: it serves one connection at a
	// time and exits once the first is done, before its FIN (the kernel
	// closes the listener first), so every check that needs a second
	// connection fails, every run, and ALIVE-1 names the checks after
	// which it was dead. (Exiting only once no connection was open made
	// the concurrent checks' verdicts depend on the clients' timing.)
	{mutant: "exit-after-one", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"STREAM-1", "STREAM-3", "STREAM-4", "PREFIX-1", "PREFIX-2", "PREFIX-4", "MODEL-1", "CONC-1", "CONC-2", "CONC-3", "CONC-4",
			"ROBUST-1", "ROBUST-2", "ROBUST-3", "LEAK-1", "LEAK-2", "LEAK-3", "LEAK-4", "ALIVE-1", "ROBUST-4"},
		shrunk: map[string]*regexp.Regexp{"STREAM-1": regexp.MustCompile(`^the server died during this check: the server process \d+ exited \(exit status 0\)`)}},
	{mutant: "backlog-1", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, slow: 2,
		want: []string{"CONC-4"}},
	// The parent keeps its copy of every connection's socket: the child's
	// shutdown(SHUT_WR) still sends the FIN, so only the count shows it.
	{mutant: "fd-leak", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID,
		want: []string{"LEAK-2"}},
	{mutant: "crash-on-reset", model: conformance.ModelThread, protocol: echo.Stream, prefix: "",
		want: []string{"STREAM-1", "ROBUST-2", "ALIVE-1"}},
	{mutant: "fd-leak", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, short: true,
		want: []string{"LEAK-2"}},
	// A goroutine blocked forever costs a process no descriptor and no
	// thread: /proc cannot see it, so for a command LEAK-4 counts threads
	// only (SPEC.md). In process, LEAK-4 counts goroutines and runs goleak.
	{mutant: "goroutine-leak", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, inProcess: true,
		want: []string{"LEAK-4"}},
	{mutant: "thread-leak", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"LEAK-4"}},
	{mutant: "zombies", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID,
		slow: 2,
		want: []string{"LEAK-1"}},
	// This server, as most Go forking servers, waits for each child in a
	// goroutine holding a pidfd: a child that lives on costs the server a
	// descriptor and a blocked thread too, per connection served.
	{mutant: "children-linger", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID, slow: 3,
		want: []string{"LEAK-2", "LEAK-3", "LEAK-4"}},
	{mutant: "orphans", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID,
		slow: 3,
		want: []string{"SHUT-7"}},

	// Life cycle.
	{mutant: "ignore-sigterm", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 3,
		want: []string{"SHUT-1", "SHUT-2", "SHUT-4", "SHUT-5", "SHUT-7"}},
	{mutant: "exit-status-1", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"SHUT-5"}},
	{mutant: "exit-at-once", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"SHUT-3"}},
	// The process that never exits is still there when SHUT-7 looks for
	// the server's tree, as with ignore-sigterm.
	{mutant: "hang-on-exit", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		slow: 3,
		want: []string{"SHUT-4", "SHUT-5", "SHUT-7"}},
	{mutant: "child-keeps-listener", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID,
		want: []string{"SHUT-2"}},
	{mutant: "serve-returns-nil", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, inProcess: true,
		want: []string{"SHUT-6"}},
	{mutant: "listener-kept-open", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"SHUT-2"}},

	// Oneshot.
	// The seed program's own configuration: fork, oneshot, "{ppid} :".
	{mutant: "oneshot-single-read", model: conformance.ModelFork, protocol: echo.Oneshot, prefix: zooSeed, short: true,
		want: []string{"ONESHOT-4"}},
	// Every check that sends a oneshot message without half-closing.
	// ONESHOT-1 tries the minimal case, one byte, before its property.
	{mutant: "oneshot-read-to-eof", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPID,
		slow:   1,
		want:   []string{"ONESHOT-1", "ONESHOT-2", "ONESHOT-3", "CONC-2", "ROBUST-3"},
		shrunk: map[string]*regexp.Regexp{"ONESHOT-1": regexp.MustCompile(`^a 1-byte message in one write, no half-close: .*no reply within`)}},
	{mutant: "oneshot-no-close", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPID,
		slow: 1,
		want: []string{"ONESHOT-2", "ONESHOT-3", "ONESHOT-5", "ROBUST-3"}},
	{mutant: "oneshot-half-max", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPID,
		slow:   1,
		want:   []string{"ONESHOT-1", "ONESHOT-4", "ONESHOT-5"},
		shrunk: map[string]*regexp.Regexp{"ONESHOT-1": regexp.MustCompile(`^a 513-byte message in one write`)}},

	// Model event: goroutines on a few threads are an event loop at the
	// threads' level; a handler that holds a thread per connection is not.
	{mutant: "correct", model: conformance.ModelEvent, protocol: echo.Stream, prefix: zooPID, eventThreads: 4},
	{mutant: "thread-per-conn", model: conformance.ModelEvent, protocol: echo.Stream, prefix: zooPID, eventThreads: 4,
		want: []string{"MODEL-1"}},
	{mutant: "thread-per-conn", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID},
	{mutant: "write-lock", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID,
		want: []string{"ROBUST-4"}},
	{mutant: "write-lock", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID},

	// Line. The correct server under both declarations of a final line
	// without a newline: declared drop, the echo it sends fails LINE-4.
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPIDPPID, short: true},
	{mutant: "correct", model: conformance.ModelFork, protocol: echo.Line, prefix: zooPIDPPID},
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID, finalLine: conformance.FinalLineDrop,
		want: []string{"LINE-4"}},
	{mutant: "line-drop-final", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID,
		want: []string{"LINE-4"}},
	{mutant: "line-drop-final", model: conformance.ModelFork, protocol: echo.Line, prefix: zooPID, finalLine: conformance.FinalLineDrop},
	{mutant: "line-add-newline", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID,
		want: []string{"LINE-4"}},
	// Every check that sends several lines in one write: LINE-4's final
	// line follows a complete one in the same write, CONC-3's rounds are
	// lines.
	{mutant: "line-first-only", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID,
		want:   []string{"LINE-1", "LINE-2", "LINE-3", "LINE-4", "CONC-3"},
		shrunk: map[string]*regexp.Regexp{"LINE-1": regexp.MustCompile(`a fixed case`)}},
	// Every check whose lines end in CR LF, or whose final line in a CR.
	{mutant: "line-strip-cr", model: conformance.ModelFork, protocol: echo.Line, prefix: zooPID,
		want: []string{"LINE-1", "LINE-2", "LINE-3", "LINE-4", "CONC-3"}},
	// Every check with a line longer than 1024 bytes.
	{mutant: "line-truncate-1024", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID,
		want:   []string{"LINE-1", "LINE-2", "LINE-4", "LINE-5"},
		shrunk: map[string]*regexp.Regexp{"LINE-1": regexp.MustCompile(`^conn \d+, 1025 bytes sent in all`)}},
	{mutant: "line-crash-long", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID,
		want: []string{"LINE-5", "ALIVE-1"}},
	// The trickling client of ROBUST-3 holds an incomplete line too.
	{mutant: "line-block-partial", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID,
		want: []string{"LINE-6", "ROBUST-3"}},

	// Unix-domain sockets: the same IDs over a path. The correct servers
	// pass everything (SHUT-8 included: they remove their socket file
	// once done); each fault below is caught as over TCP, through
	// AF_UNIX sock_diag (a connection's server side is the peer of the
	// client's socket; the listener is found by its file's inode).
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, unix: true, short: true},
	{mutant: "correct", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPIDPPID, unix: true},
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Oneshot, prefix: zooPIDPPID, unix: true},
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPIDPPID, unix: true},
	{mutant: "correct", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, unix: true, inProcess: true},
	// New over a path: the file outlives the server.
	{mutant: "socket-file-left", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, unix: true, short: true,
		want: []string{"SHUT-8"}},
	{mutant: "socket-file-left", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, unix: true, inProcess: true,
		want: []string{"SHUT-8"}},
	// The children hold the listener while the file is still there, so
	// the path still accepts after SIGTERM (the server removes the file
	// once its children are done: SHUT-8 holds).
	{mutant: "child-keeps-listener", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID, unix: true,
		want: []string{"SHUT-2"}},
	// A Unix stream socket's backpressure is its sender's send buffer
	// (the client's receive buffer plays no part): ROBUST-4 waits for the
	// server's side to show it full.
	{mutant: "write-lock", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, unix: true,
		want: []string{"ROBUST-4"}},
	{mutant: "backlog-1", model: conformance.ModelThread, protocol: echo.Stream, prefix: zooPID, unix: true, slow: 2,
		want: []string{"CONC-4"}},
	{mutant: "oneshot-single-read", model: conformance.ModelFork, protocol: echo.Oneshot, prefix: zooSeed, unix: true,
		want: []string{"ONESHOT-4"}},
	{mutant: "line-block-partial", model: conformance.ModelThread, protocol: echo.Line, prefix: zooPID, unix: true,
		want: []string{"LINE-6", "ROBUST-3"}},
	{mutant: "fd-leak", model: conformance.ModelFork, protocol: echo.Stream, prefix: zooPID, unix: true,
		want: []string{"LEAK-2"}},
}

func (zc zooCase) name() string {
	name := fmt.Sprintf("%s/%s/%s", zc.mutant, zc.model, zc.protocol)
	if zc.finalLine != "" {
		name += "/line-eof=" + string(zc.finalLine)
	}
	if zc.inProcess {
		name += "/in-process"
	}
	if zc.unix {
		name += "/unix"
	}
	return name
}

// target is the row's server: a command, or the mutant in this process.
// release ends what in-process mutants leaked, once the row is done.
func (zc zooCase) target(program string) (target conformance.Target, release func()) {
	if !zc.inProcess {
		// A mutant runs in thread or fork; declared event, it runs its
		// goroutines as the thread model does.
		model := string(zc.model)
		if zc.model == conformance.ModelEvent {
			model = mutant.ModelThread
		}
		if zc.unix {
			return conformance.Command(mutant.UnixCommand(program, zc.mutant, model, zc.protocol, zc.prefix)...), func() {}
		}
		return conformance.Command(mutant.Command(program, zc.mutant, model, zc.protocol, zc.prefix)...), func() {}
	}
	var mu sync.Mutex
	var made []*mutant.Server
	cfg := echo.Config{Protocol: zc.protocol, Prefix: echo.MustParseTemplate(zc.prefix)}
	target = conformance.InProcess(zc.mutant, func() echo.Server {
		srv, err := mutant.New(zc.mutant, cfg)
		if err != nil {
			panic(err) // a row that names a command-only mutant: a bug in the table
		}
		mu.Lock()
		made = append(made, srv)
		mu.Unlock()
		return srv
	})
	return target, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, srv := range made {
			srv.Release()
		}
	}
}

// expected is what the harness FAILs today: want − missed + falseAlarm.
func (zc zooCase) expected() []string {
	var ids []string
	for _, id := range zc.want {
		if !slices.Contains(zc.missed, id) {
			ids = append(ids, id)
		}
	}
	ids = append(ids, zc.falseAlarm...)
	sort.Strings(ids)
	return slices.Compact(ids)
}

// zooOutcome is what the harness reported for one row.
type zooOutcome struct {
	report *conformance.Report
	err    error
	took   time.Duration
}

// TestMutants runs the whole harness against every mutant of the zoo that
// runs as a command and checks that it FAILs exactly the requirements the
// fault breaks: no escaped mutant, no false alarm, and a clean bill for
// the correct servers. It logs the mutation score and the table. It runs
// beside the package's other parallel tests (servers as commands): a
// command row reads only its own server.
func TestMutants(t *testing.T) {
	covered := map[string]bool{}
	for _, zc := range zooCases {
		covered[zc.mutant] = true
	}
	for _, m := range mutant.All() {
		if !covered[m.Name] {
			t.Errorf("mutant %s has no row in zooCases", m.Name)
		}
	}
	t.Parallel()
	testZoo(t, false)
}

// TestMutantsInProcess runs the rows whose mutant runs in this process, one
// at a time and beside no other test: their LEAK checks count this
// process's goroutines and descriptors, which any other harness work would
// disturb.
func TestMutantsInProcess(t *testing.T) { testZoo(t, true) }

func testZoo(t *testing.T, inProcessRows bool) {
	scale := 1.0
	if mutant.RaceEnabled {
		scale = 2
	}

	start, cpu0 := time.Now(), zooCPU()
	var mu sync.Mutex
	type line struct {
		zc       zooCase
		observed []string
		ok       bool
		took     time.Duration
	}
	var lines []line
	t.Cleanup(func() {
		caught, total, correct, clean := 0, 0, 0, 0
		var b strings.Builder
		fmt.Fprintf(&b, "%-24s %-6s %-7s %-10s %-15s %-5s %7s  %s\n", "MUTANT", "MODEL", "PROTO", "TARGET", "PREFIX", "OK", "TIME", "FAILED (expected → observed)")
		sort.Slice(lines, func(i, j int) bool { return lines[i].zc.name() < lines[j].zc.name() })
		for _, l := range lines {
			m, _ := mutant.Lookup(l.zc.mutant)
			if m.Correct() {
				correct++
				if len(l.observed) == 0 {
					clean++
				}
			} else {
				total++
				if len(l.observed) > 0 {
					caught++
				}
			}
			exp, obs := strings.Join(l.zc.expected(), " "), strings.Join(l.observed, " ")
			if exp == obs {
				obs = "="
			}
			kind := "command"
			if l.zc.inProcess {
				kind = "in-process"
			}
			fmt.Fprintf(&b, "%-24s %-6s %-7s %-10s %-15q %-5v %7v  %s → %s\n", l.zc.mutant, l.zc.model, l.zc.protocol, kind, l.zc.prefix, l.ok,
				l.took.Round(100*time.Millisecond), exp, obs)
		}
		t.Logf("mutation score: %d/%d mutants caught; %d/%d correct servers clean; %v in all, %v of CPU (time scale %v, %d full runs at once in the package)\n%s",
			caught, total, clean, correct, time.Since(start).Round(time.Second), (zooCPU() - cpu0).Round(time.Second), scale, cap(fullRuns), b.String())
	})

	// Each selected row registers itself and waits (t.Parallel) until this
	// function returns; meanwhile the rows are started here, slow ones
	// first, as fullRuns lets them. So -run selects rows, and the work is
	// bounded whatever -parallel says.
	type started struct {
		zc   zooCase
		done chan zooOutcome
	}
	var queue []started
	var left []string
	for _, zc := range zooCases {
		if zc.inProcess != inProcessRows {
			continue
		}
		if testing.Short() && !zc.short {
			left = append(left, zc.name())
			continue
		}
		t.Run(zc.name(), func(t *testing.T) {
			done := make(chan zooOutcome, 1)
			queue = append(queue, started{zc, done})
			t.Parallel()
			out := <-done
			observed := checkZooCase(t, zc, out)
			mu.Lock()
			lines = append(lines, line{zc: zc, observed: observed, ok: !t.Failed(), took: out.took})
			mu.Unlock()
		})
	}
	if len(left) > 0 {
		t.Logf("-short: %d representative rows run; left out: %s", len(queue), strings.Join(left, " "))
	}
	sort.SliceStable(queue, func(i, j int) bool { return queue[i].zc.slow > queue[j].zc.slow })
	// Command rows run cmd/echomutant, built for this test: a fork-model
	// mutant starts it for every connection, several times faster than
	// this test binary.
	var program string
	if !inProcessRows && len(queue) > 0 {
		program = filepath.Join(testbin.Build(t, mutant.RaceEnabled, "github.com/echoconform/echoconform/cmd/echomutant"), "echomutant")
	}
	// Command rows run as fullRuns lets them; in-process rows one at a
	// time.
	var commandsDone sync.WaitGroup
	var inProcess []started
	for _, s := range queue {
		if s.zc.inProcess {
			inProcess = append(inProcess, s)
			continue
		}
		commandsDone.Add(1)
		go func() {
			defer commandsDone.Done()
			runFull(func() { s.done <- runZooCase(s.zc, program, scale) })
		}()
	}
	go func() {
		commandsDone.Wait()
		for _, s := range inProcess {
			s.done <- runZooCase(s.zc, program, scale)
		}
	}()
}

func zooOptions(zc zooCase, scale float64, extra ...conformance.Option) []conformance.Option {
	opts := []conformance.Option{
		conformance.ExpectModel(zc.model),
		conformance.ExpectProtocol(zc.protocol),
		conformance.ExpectPrefix(echo.MustParseTemplate(zc.prefix)),
		conformance.TimeScale(scale),
	}
	if zc.finalLine != "" {
		opts = append(opts, conformance.ExpectFinalLine(zc.finalLine))
	}
	if zc.eventThreads > 0 {
		opts = append(opts, conformance.ExpectEventThreads(zc.eventThreads))
	}
	if zc.unix {
		opts = append(opts, conformance.Unix())
	}
	return append(opts, extra...)
}

func runZooCase(zc zooCase, program string, scale float64) zooOutcome {
	start := time.Now()
	target, releaseLeaks := zc.target(program)
	defer releaseLeaks()
	rep, err := conformance.Check(context.Background(), target, zooOptions(zc, scale)...)
	return zooOutcome{report: rep, err: err, took: time.Since(start)}
}

// checkZooCase asserts a row and returns the IDs that failed.
func checkZooCase(t *testing.T, zc zooCase, out zooOutcome) []string {
	t.Helper()
	if out.err != nil {
		t.Errorf("the harness could not run: %v", out.err)
	}
	if out.report == nil {
		return nil
	}
	var observed []string
	results := map[string]conformance.Result{}
	for _, r := range out.report.Results {
		results[r.ID] = r
		switch r.Verdict {
		case conformance.Fail:
			observed = append(observed, r.ID)
		case conformance.Error:
			t.Errorf("%s: ERROR (the harness could not check it): %s", r.ID, r.Message)
		}
	}
	sort.Strings(observed)
	expected := zc.expected()
	m, _ := mutant.Lookup(zc.mutant)
	switch {
	case slices.Equal(observed, expected):
	case m.Correct():
		t.Errorf("a correct server (%s) FAILed %v", m.Doc, observed)
	case len(observed) == 0 && len(zc.missed) == 0:
		t.Errorf("the mutant escaped: no requirement FAILed; want %v (%s)", expected, m.Doc)
	default:
		t.Errorf("FAILed %v, want exactly %v\n  unexpected: %v\n  missing: %v", observed, expected, minus(observed, expected), minus(expected, observed))
	}
	if len(observed) == 0 && len(zc.missed) > 0 {
		t.Logf("known harness gap: the mutant escapes; it breaks %v (%s)", zc.missed, m.Doc)
	}
	for _, id := range zc.falseAlarm {
		t.Logf("known harness gap: %s FAILs although the server meets it", id)
	}
	for id, re := range zc.shrunk {
		if r := results[id]; !re.MatchString(r.Message + "\n" + r.Counterexample) {
			t.Errorf("%s: the message or counterexample does not match %s:\n%s", id, re, conformance.FormatResult(r))
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, r := range out.report.Results {
			if r.Verdict == conformance.Fail || r.Verdict == conformance.Error {
				t.Logf("%s", conformance.FormatResult(r))
			}
		}
	}
	return observed
}

// zooCPU is the CPU time of this process and of the servers it waited for.
func zooCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
