package conformance

import "time"

// deadlines is every bound the harness waits for, derived in one place from
// D (SPEC.md: 2 s) and the time scale. No other file writes a duration.
// A bound is a hang guard, never a verdict by itself: checks wait for
// events (bytes, a FIN, what /proc and sock_diag show) and give up only
// here.
type deadlines struct {
	scale float64
	// D bounds every single wait of a client: a connect, a reply, an
	// event the kernel is to show.
	D time.Duration
	// ready bounds a launched command's start: it listens within 5 D.
	ready time.Duration
	// stop bounds a server's exit after a shutdown began, and an
	// in-process Shutdown (2.5 D, SPEC.md SHUT-4).
	stop time.Duration
	// watchdog bounds a whole check; past it the check is cancelled.
	watchdog time.Duration
	// settle is how long a client waits for bytes beyond a complete echo
	// ("exactly once"); a server that sends extra bytes sends them with
	// the echo, so this is short (D/20).
	settle time.Duration
	// pause is ONESHOT-4's pause between pieces, after the server has
	// read the piece before (20 ms, scaled).
	pause time.Duration
	// early bounds the checks that must see something not happen (a
	// thread-model server starting children; SHUT-1's probe): D/10.
	early time.Duration
	// trickle is ROBUST-3's pause between single bytes (5 ms, scaled).
	trickle time.Duration
	// waitDelay bounds how long os/exec waits for a started process's
	// output pipes once it exited (D/2).
	waitDelay time.Duration
	// poll is the interval of a condition no event announces.
	poll time.Duration
}

// The supervisor is a process of its own, without a run's options: it
// gives up killing what is below it after this long, and polls as poll.
const (
	superviseKill = 10 * time.Second
	supervisePoll = time.Millisecond
)

// baseD is SPEC.md's D at time scale 1.
const baseD = 2 * time.Second

func newDeadlines(scale float64) deadlines {
	d := time.Duration(float64(baseD) * scale)
	return deadlines{
		scale:     scale,
		D:         d,
		ready:     5 * d,
		stop:      d * 5 / 2,
		watchdog:  45 * d,
		settle:    d / 20,
		pause:     time.Duration(float64(20*time.Millisecond) * scale),
		early:     d / 10,
		trickle:   time.Duration(float64(5*time.Millisecond) * scale),
		waitDelay: d / 2,
		poll:      2 * time.Millisecond,
	}
}

// transfer is the time n bytes may take to go and come back: D, plus
// 250 ms per MiB scaled (loopback moves a MiB in a few ms; a
// race-instrumented or forked server in tens).
func (dl deadlines) transfer(n int) time.Duration {
	return dl.D + time.Duration(float64(n>>20)*float64(250*time.Millisecond)*dl.scale)
}
