package conformance

import (
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/echoconform/echoconform/echo"
)

// An Option configures a run: what the server declares to be (Expect*)
// and how the harness runs (the rest).
type Option func(*options) error

type options struct {
	protocol     echo.Protocol
	proto        protocol // what the checks call on for the protocol
	prefix       echo.Template
	maxMsg       int
	maxLine      int
	finalLine    FinalLine
	model        Model
	rules        modelRules // what the checks call on for the model
	eventThreads int        // threads an event server may start besides, under load
	concurrency  int
	transport    string // in-process: the transport's name ("": TCP)
	timeScale    float64
	run, skip    *regexp.Regexp
	progress     io.Writer
	strict       bool
	rapid        rapidSettings
	rapidSet     map[string]bool // rapid flags an option set

	leak  *shared[*roundsObs]   // shared by the LEAK checks of one run
	shut  *shared[*shutdownObs] // shared by SHUT-3 to SHUT-7
	alive *aliveLog             // what every check of the run left of the server
}

func buildOptions(opts []Option) (options, error) {
	o := options{
		protocol:    echo.Stream,
		maxMsg:      echo.DefaultMaxMsg,
		maxLine:     echo.DefaultMaxLine,
		finalLine:   FinalLineEcho,
		model:       ModelAny,
		concurrency: 64,
		timeScale:   1,
		rapid:       rapidSettings{checks: DefaultChecks, steps: 20},
		leak:        &shared[*roundsObs]{},
		shut:        &shared[*shutdownObs]{},
		alive:       &aliveLog{},
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	// Looked up once, here: the Expect options accept only what is there.
	o.proto, o.rules = protocols[o.protocol], o.model.rules()
	return o, nil
}

// ExpectProtocol declares the server's protocol (default echo.Stream).
func ExpectProtocol(p echo.Protocol) Option {
	return func(o *options) error {
		if _, err := protocolOf(p); err != nil {
			return err
		}
		o.protocol = p
		return nil
	}
}

// ExpectPrefix declares the prefix template the server writes (default none).
func ExpectPrefix(t echo.Template) Option {
	return func(o *options) error { o.prefix = t; return nil }
}

// ExpectMaxMsg declares the largest oneshot message the server reads
// (default 1024).
func ExpectMaxMsg(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max-msg must be positive, got %d", n)
		}
		o.maxMsg = n
		return nil
	}
}

// ExpectMaxLine declares the longest line, its newline included, that a
// line server echoes whole (default 8192).
func ExpectMaxLine(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max-line must be positive, got %d", n)
		}
		o.maxLine = n
		return nil
	}
}

// ExpectFinalLine declares what a line server does with a last line
// without a newline at the client's half-close (default FinalLineEcho).
func ExpectFinalLine(f FinalLine) Option {
	return func(o *options) error {
		if f != FinalLineEcho && f != FinalLineDrop {
			return fmt.Errorf("unknown final-line behaviour %q (want echo or drop)", f)
		}
		o.finalLine = f
		return nil
	}
}

// ExpectModel declares the server's concurrency model (default ModelAny).
func ExpectModel(m Model) Option {
	return func(o *options) error {
		if _, err := ParseModel(string(m)); err != nil {
			return err
		}
		o.model = m
		return nil
	}
}

// ExpectEventThreads declares how many threads an event-model server may
// start besides the ones it runs at rest when connections come (a
// runtime's helper threads; default 0).
func ExpectEventThreads(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("event-threads must not be negative, got %d", n)
		}
		o.eventThreads = n
		return nil
	}
}

// Concurrency sets N of CONC-2, the connections held open at once
// (default 64).
func Concurrency(n int) Option {
	return func(o *options) error {
		if n < 4 {
			return fmt.Errorf("concurrency must be at least 4, got %d", n)
		}
		o.concurrency = n
		return nil
	}
}

// TimeScale multiplies every per-operation deadline (default 1), for slow
// machines, race-instrumented servers and debuggers.
func TimeScale(f float64) Option {
	return func(o *options) error {
		if f <= 0 {
			return fmt.Errorf("time scale must be positive, got %v", f)
		}
		o.timeScale = f
		return nil
	}
}

// Unix gives an in-process target a Unix-domain stream socket instead of
// loopback TCP: a *net.UnixListener on a fresh path in a private temporary
// directory (mode 0700) for every server, removed once it is gone. Every
// requirement that makes sense over a path applies, with the same IDs. A
// command names its socket with "{sock}" and an address is "unix:/path";
// for them the option only agrees (it is an error with a TCP one).
func Unix() Option {
	return func(o *options) error { o.transport = "unix"; return nil }
}

// agree checks the transport a target names against the options'.
func (o *options) agree(tr transport) error {
	if o.transport != "" && o.transport != tr.name() {
		return fmt.Errorf("the options ask for transport %s, the target names a %s address", o.transport, tr.name())
	}
	return nil
}

// Only keeps only the requirements whose ID matches re.
func Only(re *regexp.Regexp) Option {
	return func(o *options) error { o.run = re; return nil }
}

// Exclude leaves out the requirements whose ID matches re.
func Exclude(re *regexp.Regexp) Option {
	return func(o *options) error { o.skip = re; return nil }
}

// Progress writes a line to w as each requirement starts and ends, so that a
// long run is never silent.
func Progress(w io.Writer) Option {
	return func(o *options) error { o.progress = w; return nil }
}

// DefaultChecks is how many cases each property check tries after its
// fixed boundary cases, unless Checks says otherwise.
const DefaultChecks = 20

// Checks sets how many random cases each property check (STREAM-1,
// ONESHOT-1) tries after its fixed boundary cases (default 20; go test
// -short tries a fifth).
func Checks(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("checks must be positive, got %d", n)
		}
		o.rapid.checks = n
		o.setRapid("rapid.checks")
		return nil
	}
}

// Seed fixes the seed of the property checks' random cases, to replay a
// failure a report names (default 0: a random seed).
func Seed(seed uint64) Option {
	return func(o *options) error { o.rapid.seed = seed; o.setRapid("rapid.seed"); return nil }
}

// ShrinkTime bounds the time a property check spends shrinking a failure
// to its minimal case (default 5 D).
func ShrinkTime(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("shrink time must be positive, got %v", d)
		}
		o.rapid.shrinkTime = d
		o.setRapid("rapid.shrinktime")
		return nil
	}
}

// Strict makes Test fail on a failed SHOULD too.
func Strict() Option {
	return func(o *options) error { o.strict = true; return nil }
}

// d is the deadline D of SPEC.md, scaled.
func (o *options) d() time.Duration { return o.deadlines().D }

// deadlines derives every bound of the run from D and the time scale.
func (o *options) deadlines() deadlines { return newDeadlines(o.timeScale) }

func (o *options) selected(id string) bool {
	return (o.run == nil || o.run.MatchString(id)) && (o.skip == nil || !o.skip.MatchString(id))
}

func (o *options) setRapid(name string) {
	if o.rapidSet == nil {
		o.rapidSet = map[string]bool{}
	}
	o.rapidSet[name] = true
}
