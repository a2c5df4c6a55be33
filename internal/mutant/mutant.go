// Package mutant is a zoo of deliberately broken echo servers, for testing
// the conformance harness itself (mutation testing): every mutant is one
// small, obvious fault in an otherwise correct server, and the harness must
// catch it under the requirement the fault breaks.
//
// There is one correct little server, in both concurrency models of SPEC.md
// (thread: a goroutine per connection; fork: a re-exec of the current binary
// per connection, the socket handed over as descriptor 3), and a set of fault
// knobs; each named mutant sets some knobs. A mutant runs as a standalone
// server process started from the current binary: Command returns its argv,
// and Init, called first thing in main or TestMain, recognises it, serves and
// exits. Init also runs the per-connection children of the fork model.
//
//	func TestMain(m *testing.M) {
//		mutant.Init()
//		...
//	}
package mutant

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/echoconform/echoconform/echo"
)

// The concurrency models a mutant can run in (SPEC.md section 3).
const (
	ModelThread = "thread"
	ModelFork   = "fork"
)

// Knobs are the faults of a server. The zero value is the correct server of
// SPEC.md.
type Knobs struct {
	// Stream data path. Offsets count the bytes received from the client.
	DropAt           int64 // drop the byte at this offset (0 with DropAtSet)
	DropAtSet        bool  // DropAt applies
	CutAfter         int64 // end the echo (FIN) once this many bytes were echoed; drop the rest
	DupAt            int64 // write twice the chunk that holds this offset (0 with DupAtSet)
	DupAtSet         bool  // DupAt applies
	DropNUL          bool  // drop every 0x00 byte
	CRLF             bool  // text mode: "\n" goes out as "\r\n"
	PrefixEveryChunk bool  // write the prefix before every echoed chunk instead of once
	ReadSize         int   // read at most this many bytes at a time (0: 64 KiB)
	EchoOnEOF        bool  // hold the echo until the client half-closes
	NoFIN            bool  // after the client's half-close, never close (until shutdown)
	ResetClose       bool  // close abortively (SO_LINGER 0: RST) right after the echo or reply is delivered

	// The prefix.
	PIDPlusOne    bool // {pid} is the handling process's PID + 1
	PIDIsParent   bool // {pid} is the handling process's parent (fork: the server)
	PPIDIsSelf    bool // {ppid} is the handling process itself
	PrefixNoSpace bool // trailing spaces of the rendered prefix are left out

	// Concurrency.
	CrossTalk     bool // thread: every handler echoes into the connection accepted last
	Serial        bool // one connection at a time
	MaxConns      int  // at most this many connections at once (0: no bound)
	PeekFirstByte bool // the accept loop reads the first byte before handing off

	// Robustness and leaks.
	CrashOnReset  bool // the server exits when a client resets its connection
	CrashOnEmpty  bool // the server exits when a client half-closes or closes without sending a byte (oneshot: a Go panic)
	ExitAfterOne  bool // thread: the server exits (status 0) as soon as no connection is open, once it has served one
	LeakFD        bool // a descriptor stays open per connection
	LeakGoroutine bool // thread: a goroutine blocks forever per connection
	LeakThread    bool // thread: an OS thread blocks forever per connection
	ThreadPerConn bool // thread: each connection's handler holds an OS thread of its own while it lives
	WriteLock     bool // every connection's writes go through one lock, held while a write blocks
	Zombies       bool // fork: children are waited for but never reaped
	Orphans       bool // fork: each child leaves a helper behind that ignores SIGTERM and lives 60 s
	ChildLinger   bool // fork: a child lives on after its connection, until the server's shutdown closes a pipe it waits on
	ChildListener bool // fork: children inherit the listening socket
	Backlog       int  // the listen backlog (0: the system's maximum)

	// Life cycle.
	IgnoreTERM   bool // SIGTERM is ignored
	ExitStatus   int  // the exit status after a clean shutdown
	ExitAtOnce   bool // SIGTERM ends the process at once, in-flight connections and all
	KeepListener bool // after SIGTERM the listener stays open until in-flight connections finish
	ServeNil     bool // in-process: Serve returns nil after Shutdown, not ErrServerClosed
	HangOnExit   bool // after a clean shutdown the process never exits (a deadlock in its clean-up)
	// Unix-domain sockets. A mutant on a path (-addr unix:/PATH) closes
	// its listener at shutdown without removing the file, and removes it
	// once its connections are done, before it exits.
	KeepSocketFile bool // the socket file is never removed

	// Oneshot.
	SingleRead  bool // one read is the message (the seed)
	ReadToEOF   bool // the message ends only at EOF or max-msg
	NoCloseSelf bool // after the reply, the server closes only once the client has
	HalfMax     bool // the message is at most max-msg/2 bytes

	// Line.
	LineFirstOnly    bool // of the complete lines one read brings, only the first comes back (a recv, then split)
	LineDropFinal    bool // a last line without a newline is dropped at EOF
	LineAddNewline   bool // a last line without a newline comes back with one added (readLine, println)
	LineStripCR      bool // CR LF goes back as LF, a CR at the end of the last line is dropped (readLine, println)
	LineTruncate     int  // a line longer than this comes back cut to its first LineTruncate-1 bytes and a newline (fgets, the rest discarded)
	LineCrashLong    bool // the server exits when a line exceeds max-line (a fixed buffer)
	LineBlockPartial bool // once a client's line has begun, every other client waits until it is complete (a blocking readline in a select loop)

	// Slow but correct.
	ListenDelay time.Duration // listen this late
	WriteDelay  time.Duration // pause before every write
}

// A Mutant is a named server: one fault (or none) in the correct server.
type Mutant struct {
	Name      string
	Doc       string
	Models    []string        // the models it runs in
	Protocols []echo.Protocol // the protocols its fault applies to
	Knobs     Knobs
}

var stream, oneshot, both = []echo.Protocol{echo.Stream}, []echo.Protocol{echo.Oneshot}, []echo.Protocol{echo.Stream, echo.Oneshot}
var line, every = []echo.Protocol{echo.Line}, echo.Protocols
var thread, fork, models = []string{ModelThread}, []string{ModelFork}, []string{ModelThread, ModelFork}

var zoo = []Mutant{
	// Correct servers: they must pass everything.
	{Name: "correct", Doc: "no fault at all", Models: models, Protocols: every},
	{Name: "slow-listen", Doc: "correct, but listens only 700 ms after it starts", Models: models, Protocols: every,
		Knobs: Knobs{ListenDelay: 700 * time.Millisecond}},
	{Name: "slow-write", Doc: "correct, but pauses 5 ms before every write", Models: models, Protocols: every,
		Knobs: Knobs{WriteDelay: 5 * time.Millisecond}},

	// Stream data path.
	{Name: "drop-byte-4096", Doc: "drops the byte at stream offset 4096: any transfer of 4097 bytes or more loses one", Models: models, Protocols: stream,
		Knobs: Knobs{DropAt: 4096, DropAtSet: true}},
	{Name: "cut-after-1024", Doc: "cuts the echo once it has echoed 1024 bytes: FIN, and the rest of the input is dropped", Models: models, Protocols: stream,
		Knobs: Knobs{CutAfter: 1024}},
	{Name: "drop-nul", Doc: "drops every NUL byte (C-string handling)", Models: models, Protocols: stream,
		Knobs: Knobs{DropNUL: true}},
	{Name: "crlf", Doc: `text mode: every "\n" goes back as "\r\n"`, Models: models, Protocols: stream,
		Knobs: Knobs{CRLF: true}},
	{Name: "dup-chunk-8192", Doc: "writes twice the chunk that holds stream offset 8192", Models: models, Protocols: stream,
		Knobs: Knobs{DupAt: 8192, DupAtSet: true}},
	// Reads of at most 1 KiB make the chunks, and so the fault's reach, the
	// same however the bytes happen to arrive.
	{Name: "prefix-every-chunk", Doc: "writes the prefix before every chunk it echoes (reads of up to 1 KiB) instead of once", Models: models, Protocols: stream,
		Knobs: Knobs{PrefixEveryChunk: true, ReadSize: 1024}},
	{Name: "echo-on-eof", Doc: "echoes nothing until the client half-closes", Models: models, Protocols: stream,
		Knobs: Knobs{EchoOnEOF: true}},
	{Name: "no-fin", Doc: "never sends FIN after the client's half-close: the connection stays open until shutdown", Models: thread, Protocols: stream,
		Knobs: Knobs{NoFIN: true}},
	{Name: "reset-close", Doc: "closes abortively (SO_LINGER 0: RST) right after the echo or reply, so data still buffered is lost", Models: models, Protocols: both,
		Knobs: Knobs{ResetClose: true}},

	// The prefix.
	{Name: "pid-plus-one", Doc: "{pid} is off by one (PID + 1)", Models: models, Protocols: stream,
		Knobs: Knobs{PIDPlusOne: true}},
	{Name: "server-pid-in-child", Doc: "fork: {pid} is the server's PID, where the child's belongs", Models: fork, Protocols: stream,
		Knobs: Knobs{PIDIsParent: true}},
	{Name: "ppid-self", Doc: "{ppid} is the handling process itself instead of its parent", Models: models, Protocols: stream,
		Knobs: Knobs{PPIDIsSelf: true}},
	{Name: "prefix-no-space", Doc: `the prefix lacks its trailing space ("123:" for "{pid}: ")`, Models: models, Protocols: both,
		Knobs: Knobs{PrefixNoSpace: true}},

	// Concurrency.
	{Name: "cross-talk", Doc: "one variable shared by every handler holds the connection accepted last, and every handler echoes into it", Models: thread, Protocols: stream,
		Knobs: Knobs{CrossTalk: true}},
	{Name: "serial", Doc: "serves one connection at a time, in the accept loop", Models: models, Protocols: stream,
		Knobs: Knobs{Serial: true}},
	{Name: "cap-2", Doc: "serves at most 2 connections at once; the others wait in the backlog", Models: models, Protocols: stream,
		Knobs: Knobs{MaxConns: 2}},
	{Name: "accept-blocked-by-idle", Doc: "the accept loop reads a connection's first byte before handing it off, so a client that sends nothing blocks everyone", Models: models, Protocols: stream,
		Knobs: Knobs{PeekFirstByte: true}},

	// Robustness and leaks.
	{Name: "crash-on-reset", Doc: "the server exits when a client resets its connection", Models: thread, Protocols: both,
		Knobs: Knobs{CrashOnReset: true}},
	{Name: "crash-on-empty", Doc: "the server exits when a client closes without sending a byte (an unchecked empty read; oneshot: a panic on the empty message)", Models: thread, Protocols: both,
		Knobs: Knobs{CrashOnEmpty: true}},
	{Name: "exit-after-one", Doc: "serves one connection at a time and exits (status 0) once the first is done (a loop written as a single accept)", Models: thread, Protocols: both,
		Knobs: Knobs{ExitAfterOne: true, Serial: true}},
	{Name: "fd-leak", Doc: "one descriptor leaks per connection (thread: /dev/null opened; fork: the server keeps its copy of the socket)", Models: models, Protocols: stream,
		Knobs: Knobs{LeakFD: true}},
	{Name: "goroutine-leak", Doc: "thread: a goroutine per connection blocks forever", Models: thread, Protocols: stream,
		Knobs: Knobs{LeakGoroutine: true}},
	{Name: "thread-leak", Doc: "thread: a goroutine per connection locks its OS thread and blocks forever", Models: thread, Protocols: stream,
		Knobs: Knobs{LeakThread: true}},
	{Name: "thread-per-conn", Doc: "thread: each connection's handler holds an OS thread of its own while the connection lives (correct for model thread, not for event)", Models: thread, Protocols: stream,
		Knobs: Knobs{ThreadPerConn: true}},
	{Name: "write-lock", Doc: "every connection's writes go through one lock, held while a write blocks: a client that never reads its echo stalls everyone (an event loop with blocking writes)", Models: models, Protocols: stream,
		Knobs: Knobs{WriteLock: true}},
	{Name: "zombies", Doc: "fork: the server waits for its children to exit but never reaps them", Models: fork, Protocols: stream,
		Knobs: Knobs{Zombies: true}},
	{Name: "children-linger", Doc: "fork: a child lives on after its connection closed, until the server shuts down (it closes a pipe the children wait on)", Models: fork, Protocols: stream,
		Knobs: Knobs{ChildLinger: true}},
	{Name: "child-keeps-listener", Doc: "fork: children inherit the listening socket (Python's ForkingMixIn), so the port outlives the server's shutdown while they run", Models: fork, Protocols: stream,
		Knobs: Knobs{ChildListener: true}},
	{Name: "backlog-1", Doc: "listens with a backlog of 1, so a burst of clients waits for SYN retransmits", Models: models, Protocols: stream,
		Knobs: Knobs{Backlog: 1}},
	{Name: "orphans", Doc: "fork: each child leaves a helper process behind that ignores SIGTERM and lives 60 s", Models: fork, Protocols: stream,
		Knobs: Knobs{Orphans: true}},

	// Life cycle.
	{Name: "ignore-sigterm", Doc: "SIGTERM is ignored", Models: models, Protocols: stream,
		Knobs: Knobs{IgnoreTERM: true}},
	{Name: "exit-status-1", Doc: "exits with status 1 after an otherwise clean shutdown", Models: models, Protocols: stream,
		Knobs: Knobs{ExitStatus: 1}},
	{Name: "exit-at-once", Doc: "exits on SIGTERM at once, dropping in-flight connections", Models: models, Protocols: stream,
		Knobs: Knobs{ExitAtOnce: true}},
	{Name: "hang-on-exit", Doc: "after SIGTERM closes the listener and finishes the connections, but never exits", Models: models, Protocols: stream,
		Knobs: Knobs{HangOnExit: true}},
	{Name: "serve-returns-nil", Doc: "in-process (mutant.New): Serve returns nil after Shutdown instead of ErrServerClosed", Models: thread, Protocols: stream,
		Knobs: Knobs{ServeNil: true}},
	{Name: "socket-file-left", Doc: "Unix: never removes its socket file, so it outlives the server (and the next start on that path fails with EADDRINUSE); over TCP a correct server", Models: models, Protocols: stream,
		Knobs: Knobs{KeepSocketFile: true}},
	{Name: "listener-kept-open", Doc: "after SIGTERM stops accepting but keeps the listening socket open while in-flight connections finish", Models: models, Protocols: stream,
		Knobs: Knobs{KeepListener: true}},

	// Oneshot.
	{Name: "oneshot-single-read", Doc: "one read is the message (the seed's recv(1024))", Models: models, Protocols: oneshot,
		Knobs: Knobs{SingleRead: true}},
	{Name: "oneshot-read-to-eof", Doc: "reads until EOF or max-msg: hangs the canonical clients, which never half-close", Models: models, Protocols: oneshot,
		Knobs: Knobs{ReadToEOF: true}},
	{Name: "oneshot-no-close", Doc: "after the reply, closes only once the client has closed or half-closed", Models: models, Protocols: oneshot,
		Knobs: Knobs{NoCloseSelf: true}},
	{Name: "oneshot-half-max", Doc: "reads at most half of max-msg", Models: models, Protocols: oneshot,
		Knobs: Knobs{HalfMax: true}},

	// Line.
	{Name: "line-first-only", Doc: "of the complete lines one read brings, only the first comes back (a recv, then split on the newline)", Models: models, Protocols: line,
		Knobs: Knobs{LineFirstOnly: true}},
	{Name: "line-drop-final", Doc: "drops a last line without a newline at EOF, though declared to echo it", Models: models, Protocols: line,
		Knobs: Knobs{LineDropFinal: true}},
	{Name: "line-add-newline", Doc: "a last line without a newline comes back with one added (Java's readLine and println)", Models: models, Protocols: line,
		Knobs: Knobs{LineAddNewline: true}},
	{Name: "line-strip-cr", Doc: "CR LF comes back as LF, and a CR ending the last line is dropped (readLine and println)", Models: models, Protocols: line,
		Knobs: Knobs{LineStripCR: true}},
	{Name: "line-truncate-1024", Doc: "a line longer than 1024 bytes comes back cut to 1023 bytes and a newline (fgets into a 1 KiB buffer, the rest discarded)", Models: models, Protocols: line,
		Knobs: Knobs{LineTruncate: 1024}},
	{Name: "line-crash-long", Doc: "the server exits when a line exceeds max-line (a fixed buffer overrun)", Models: thread, Protocols: line,
		Knobs: Knobs{LineCrashLong: true}},
	{Name: "line-block-partial", Doc: "once a client's line has begun, every other client waits until it is complete (a blocking readline after select)", Models: thread, Protocols: line,
		Knobs: Knobs{LineBlockPartial: true}},
}

// All returns every mutant, the correct servers first.
func All() []Mutant { return slices.Clone(zoo) }

// Lookup returns the mutant called name.
func Lookup(name string) (Mutant, bool) {
	for _, m := range zoo {
		if m.Name == name {
			return m, true
		}
	}
	return Mutant{}, false
}

// Correct reports whether the mutant is a correct server (maybe a slow
// one): it must pass every requirement.
func (m Mutant) Correct() bool {
	k := m.Knobs
	k.ListenDelay, k.WriteDelay = 0, 0
	return k == Knobs{}
}

// flagMutant is the marker argument by which Init recognises a server
// process started from Command's argv.
const flagMutant = "-echoconform.mutant="

// Command returns the argv that runs mutant name as a server process in the
// given model, speaking protocol with the prefix template: the program exe
// (cmd/echomutant, or "" for the current binary) with a marker argument that
// Init recognises, and "{addr}" where the listening address goes
// (conformance.Command replaces it). The program must call Init first thing
// in main or TestMain.
func Command(exe, name, model string, protocol echo.Protocol, prefix string) []string {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			exe = os.Args[0]
		}
	}
	return []string{exe, flagMutant + name, "-model=" + model, "-protocol=" + protocol.String(),
		"-prefix=" + prefix, "-addr={addr}"}
}

// UnixCommand is Command for a mutant on a Unix-domain socket: "{sock}"
// where the path goes.
func UnixCommand(exe, name, model string, protocol echo.Protocol, prefix string) []string {
	argv := Command(exe, name, model, protocol, prefix)
	argv[len(argv)-1] = "-addr=unix:{sock}"
	return argv
}

// Init runs the process as a mutant when it was started as one: a server
// process (argv from Command) or a fork-model child serving one connection.
// It then exits. Otherwise it returns at once. Call it before anything
// else, in particular before flag.Parse.
func Init() {
	if v, ok := os.LookupEnv(envChild); ok {
		os.Exit(runChild(v))
	}
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], flagMutant) {
		os.Exit(runServer(os.Args[1:]))
	}
}

func (m Mutant) String() string { return m.Name }

// check reports whether the mutant runs in model and protocol.
func (m Mutant) check(model string, p echo.Protocol) error {
	if !slices.Contains(m.Models, model) {
		return fmt.Errorf("mutant %s runs in model %v, not %q", m.Name, m.Models, model)
	}
	if !slices.Contains(m.Protocols, p) {
		return fmt.Errorf("mutant %s applies to protocol %v, not %v", m.Name, m.Protocols, p)
	}
	return nil
}
