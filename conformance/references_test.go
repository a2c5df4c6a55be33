package conformance_test

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/eventloop"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
	"github.com/echoconform/echoconform/internal/mutant"
	"github.com/echoconform/echoconform/internal/testbin"
)

// referenceCases are the declarations the references are checked under:
// every protocol, with and without a prefix. Each runs once per reference,
// and every way of running a server is covered: in process over TCP (with
// a prefix), as a command over TCP (without one), as a command over a Unix
// socket (with one). With -short, the in-process cases and one command
// case on each transport (stream: SHUT-5 needs a command, SHUT-8 a Unix
// socket) cover every requirement once for each reference.
var referenceCases = []struct {
	name     string
	protocol echo.Protocol
	prefix   string
}{
	{"stream", echo.Stream, ""},
	{"stream-prefix", echo.Stream, "{pid}/{ppid}: "},
	{"oneshot", echo.Oneshot, ""},
	{"oneshot-prefix", echo.Oneshot, "{pid}/{ppid}: "},
	{"line", echo.Line, ""},
	{"line-prefix", echo.Line, "{pid}/{ppid}: "},
}

// referenceModels are the references' models, one reference each.
var referenceModels = []conformance.Model{conformance.ModelThread, conformance.ModelFork, conformance.ModelEvent}

// goRuntimeThreads is what an event-model reference declares as a command:
// the Go runtime starts a thread or two of its own as load comes (in
// process, MODEL-1 counts goroutines, and none is declared).
const goRuntimeThreads = 4

// skipShort leaves a case out under -short, saying so.
func skipShort(t *testing.T, keep bool) {
	t.Helper()
	if testing.Short() && !keep {
		t.Skip("-short: the other declarations of the same reference run in the full suite")
	}
}

func declare(protocol echo.Protocol, prefix echo.Template, model conformance.Model) []conformance.Option {
	return []conformance.Option{conformance.ExpectProtocol(protocol), conformance.ExpectPrefix(prefix),
		conformance.ExpectModel(model), conformance.TimeScale(timeScale)}
}

// raceCases are the in-process cases run under the race detector: each
// model once and each protocol once, so that every check's code runs
// instrumented (the race detector looks at the harness's concurrency; the
// references' own is raced in their packages). Without it all nine run.
var raceCases = map[string]bool{"thread/stream-prefix": true, "fork/oneshot-prefix": true, "event/line-prefix": true}

// raceCommandCases are the command cases run under the race detector: one
// on each transport, with children over TCP (the zoo's -short rows run
// thread-model commands on both).
var raceCommandCases = map[string]bool{"TestReferencesCommand/fork/stream": true, "TestReferencesUnix/event/stream-prefix": true}

// TestReferencesInProcess checks the references in this process, with a
// prefix (the declarations without one run as commands,
// TestReferencesCommand). The in-process leak checks read the whole
// process, so these run one at a time, before the parallel tests.
func TestReferencesInProcess(t *testing.T) {
	// The forking reference's children run cmd/echochild, as echoserver's
	// do (impl/forking's tests check children that re-execute the server's
	// binary): a test binary re-executed takes several times longer to
	// start.
	child := filepath.Join(testbin.Build(t, false, "github.com/echoconform/echoconform/cmd/echochild"), "echochild")
	for _, model := range referenceModels {
		for _, rc := range referenceCases {
			if rc.prefix == "" {
				continue
			}
			t.Run(string(model)+"/"+rc.name, func(t *testing.T) {
				if mutant.RaceEnabled && !raceCases[string(model)+"/"+rc.name] {
					t.Skip("-race: each model and each protocol run once under the race detector; every case runs without it")
				}
				cfg := echo.Config{Protocol: rc.protocol, Prefix: echo.MustParseTemplate(rc.prefix)}
				var newServer func() echo.Server
				switch model {
				case conformance.ModelThread:
					newServer = func() echo.Server { return threading.New(cfg) }
				case conformance.ModelFork:
					newServer = func() echo.Server {
						srv := forking.New(cfg)
						srv.Child = child
						return srv
					}
				case conformance.ModelEvent:
					newServer = func() echo.Server { return eventloop.New(cfg) }
				}
				conformance.Test(t, conformance.InProcess(string(model), newServer), declare(rc.protocol, cfg.Prefix, model)...)
			})
		}
	}
}

// TestReferencesCommand checks the references as cmd/echoserver
// processes, as a user's server in another language is checked, under the
// declarations without a prefix (those with one run in process and over
// Unix: the prefix and the transport are independent of each other).
// It runs beside the zoo and the third-party servers, all waiting for
// fullRuns, so that no phase ends on a straggler while cores idle.
func TestReferencesCommand(t *testing.T) {
	t.Parallel()
	testReferenceCommands(t, "{addr}", false)
}

// TestReferencesUnix checks the references as cmd/echoserver processes on
// a Unix-domain socket (-addr unix:{sock}), every model and protocol, each
// with a prefix. Beside the zoo, as TestReferencesCommand.
func TestReferencesUnix(t *testing.T) {
	t.Parallel()
	testReferenceCommands(t, "unix:{sock}", true, conformance.Unix())
}

// testReferenceCommands runs each model's reference as echoserver -addr
// addr under each declaration with a prefix (prefixed) or without one,
// with opts.
func testReferenceCommands(t *testing.T, addr string, prefixed bool, opts ...conformance.Option) {
	bin := buildEchoserver(t)
	for _, model := range referenceModels {
		for _, rc := range referenceCases {
			if (rc.prefix != "") != prefixed {
				continue
			}
			t.Run(string(model)+"/"+rc.name, func(t *testing.T) {
				skipShort(t, rc.protocol == echo.Stream)
				if mutant.RaceEnabled && !raceCommandCases[t.Name()] {
					t.Skip("-race: one command case on each transport runs under the race detector; every case runs without it")
				}
				t.Parallel()
				target := conformance.Command(bin, "-model", string(model), "-protocol", rc.protocol.String(), "-prefix", rc.prefix, "-addr", addr)
				all := append(declare(rc.protocol, echo.MustParseTemplate(rc.prefix), model), conformance.ExpectEventThreads(goRuntimeThreads))
				runFull(func() { conformance.Test(t, target, append(all, opts...)...) })
			})
		}
	}
}

// buildEchoserver builds cmd/echoserver into the test's temporary
// directory, and cmd/echochild beside it, as `go install ./cmd/...` does:
// the forking reference's children run echochild then (TestReferences
// checks the children that re-execute the server's binary).
func buildEchoserver(t *testing.T) string {
	t.Helper()
	dir := testbin.Build(t, false, "github.com/echoconform/echoconform/cmd/echoserver", "github.com/echoconform/echoconform/cmd/echochild")
	return filepath.Join(dir, "echoserver")
}

func regexpOf(s string) *regexp.Regexp { return regexp.MustCompile(s) }
