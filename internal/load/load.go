// Package load drives an echo server on loopback with concurrent clients,
// verifies every byte that comes back, and measures what the server
// sustains: MB/s, exchanges/s and latency percentiles. It is the engine of
// cmd/echoload, of `make bench` and of the benchmarks in impl/.
//
// Two shapes of load:
//
//   - Exchange: every operation is a connection of its own: connect, send
//     a message, half-close, read the reply to EOF (the life of a oneshot
//     client, and of the tutorials' clients of a stream server).
//   - Stream: every client holds one connection and writes while it reads
//     the echo back (full duplex), for throughput.
//
// Every network operation has a deadline, and a run is bounded by a
// count, a duration or a number of bytes. Typical use:
//
//	res, err := load.Run(ctx, load.Config{Addr: "127.0.0.1:7007", Clients: 8, Duration: 5 * time.Second})
//	fmt.Println(res)
package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echoconform/echoconform/echo"
)

// Mode is the shape of the load.
type Mode int

const (
	// Exchange makes a connection per operation: connect, send, half-close,
	// read the reply to EOF.
	Exchange Mode = iota
	// Stream holds one connection per client and streams through it.
	Stream
)

func (m Mode) String() string {
	switch m {
	case Exchange:
		return "exchange"
	case Stream:
		return "stream"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "exchange" or "stream".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "exchange":
		return Exchange, nil
	case "stream":
		return Stream, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want exchange or stream)", s)
}

// Defaults of Config.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultExchangeBytes = 64
	DefaultChunk         = 64 << 10
)

// Config describes a run.
type Config struct {
	// Addr is the server's TCP address; it must be on loopback.
	Addr string
	// Clients is the number of concurrent clients (default 1).
	Clients int
	// Mode is the shape of the load.
	Mode Mode
	// Protocol is what the server speaks. Oneshot allows Exchange only.
	Protocol echo.Protocol
	// Prefix is the template every reply must begin with (zero: none).
	Prefix echo.Template
	// Bytes is, for Exchange, the size of each message (default 64; at
	// most MaxMsg in the oneshot protocol) and, for Stream, how many bytes
	// each client sends (0: as many as Duration allows).
	Bytes int64
	// MaxMsg is the largest oneshot message of the server (default
	// echo.DefaultMaxMsg).
	MaxMsg int
	// NoHalfClose makes oneshot exchanges wait for the reply without
	// half-closing, as the canonical clients do. The references then wait
	// for their quiet period before they answer.
	NoHalfClose bool
	// Chunk is the size of each write of Stream (default 64 KiB).
	Chunk int
	// Duration bounds the measured part of the run (0: no bound).
	Duration time.Duration
	// Count bounds the measured exchanges of Exchange (0: no bound).
	Count int64
	// Warmup runs before the measurement and is not counted.
	Warmup time.Duration
	// Timeout is the deadline of every network operation: a dial, a
	// write, a read (default 2 s).
	Timeout time.Duration
	// Rate paces Exchange at this many exchanges per second in all (0: as
	// fast as the server answers). Each client starts its exchanges on a
	// fixed schedule, and an exchange's latency counts from its scheduled
	// start, so that a server that falls behind shows in the latency
	// rather than in fewer samples.
	Rate float64
}

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	if c.Clients == 0 {
		c.Clients = 1
	}
	if c.Mode == Exchange && c.Bytes == 0 {
		c.Bytes = DefaultExchangeBytes
	}
	if c.MaxMsg == 0 {
		c.MaxMsg = echo.DefaultMaxMsg
	}
	if c.Chunk == 0 {
		c.Chunk = DefaultChunk
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports what makes c unusable: an address off loopback, a
// combination that cannot be verified, a run without bounds.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := CheckLoopback(c.Addr); err != nil {
		return err
	}
	switch {
	case c.Clients < 0:
		return fmt.Errorf("clients must be positive, not %d", c.Clients)
	case c.Mode != Exchange && c.Mode != Stream:
		return fmt.Errorf("unknown mode %v", c.Mode)
	case c.Protocol != echo.Stream && c.Protocol != echo.Oneshot:
		return fmt.Errorf("unknown protocol %v", c.Protocol)
	case c.Mode == Stream && c.Protocol == echo.Oneshot:
		return errors.New("stream mode needs a server of the stream protocol (a oneshot server answers one message)")
	case c.Bytes < 0 || c.Chunk < 0 || c.Count < 0 || c.MaxMsg < 0:
		return errors.New("bytes, chunk, count and max-msg must not be negative")
	case c.Duration < 0 || c.Warmup < 0 || c.Timeout < 0:
		return errors.New("durations must not be negative")
	case c.Rate < 0 || (c.Rate > 0 && c.Mode != Exchange):
		return errors.New("rate must not be negative, and applies to exchange mode only")
	case c.Mode == Exchange && c.Protocol == echo.Oneshot && c.Bytes > int64(c.MaxMsg):
		return fmt.Errorf("a oneshot message of %d bytes exceeds max-msg %d: the reply would be cut", c.Bytes, c.MaxMsg)
	case c.Mode == Exchange && c.Bytes > 1<<30:
		return fmt.Errorf("an exchange of %d bytes is more than 1 GiB", c.Bytes)
	case c.NoHalfClose && c.Protocol != echo.Oneshot:
		return errors.New("no-half-close applies to the oneshot protocol only (a stream server ends on EOF)")
	case c.Count > 0 && c.Mode != Exchange:
		return errors.New("count applies to exchange mode only (stream mode is bounded by bytes and duration)")
	case c.Duration == 0 && c.Count == 0 && (c.Mode == Exchange || c.Bytes == 0):
		return errors.New("the run is unbounded: give a duration, a count (exchange) or bytes (stream)")
	}
	return nil
}

// CheckLoopback reports an error unless addr is host:port with a loopback
// host (127.0.0.0/8, ::1 or localhost): the load generator never loads
// another machine.
func CheckLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %v", addr, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("bad address %q: no port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("address %q is not on loopback (127.0.0.0/8, ::1, localhost): echoload loads this machine only", addr)
}

// Result is what a run measured. Only the measured part counts: the
// warm-up, and operations still in flight when the run stopped, do not.
type Result struct {
	Config    Config
	Exchanges int64         // exchanges completed and verified (stream: connections)
	Bytes     int64         // payload bytes echoed back and verified (prefixes excluded)
	Elapsed   time.Duration // the measured time
	// Latency of an exchange (dial to EOF) or, in stream mode, of a
	// chunk (its write to its last byte read back).
	P50, P90, P99, Max time.Duration
	Samples            int64 // latencies recorded
}

// MBPerSec is the verified payload per second, in 10^6 bytes.
func (r Result) MBPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds()
}

// PerSec is the exchanges (stream: connections) completed per second.
func (r Result) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Exchanges) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	c := r.Config
	s := fmt.Sprintf("%s %s, %d clients, %d-byte ", c.Mode, c.Protocol, c.Clients, c.Bytes)
	if c.Mode == Exchange {
		if c.Rate > 0 {
			s += fmt.Sprintf("messages paced at %.0f/s", c.Rate)
		} else {
			s += "messages"
		}
		s += fmt.Sprintf(": %d exchanges in %.2fs: %.0f exchanges/s, %.2f MB/s", r.Exchanges, r.Elapsed.Seconds(), r.PerSec(), r.MBPerSec())
	} else {
		if c.Bytes == 0 {
			s = fmt.Sprintf("%s %s, %d clients, %d-byte writes: ", c.Mode, c.Protocol, c.Clients, c.Chunk)
		} else {
			s += "streams: "
		}
		s += fmt.Sprintf("%d bytes in %.2fs: %.1f MB/s", r.Bytes, r.Elapsed.Seconds(), r.MBPerSec())
	}
	return s + fmt.Sprintf(", latency p50 %s p90 %s p99 %s max %s",
		fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1fµs", float64(d)/1e3)
}

// Run drives cfg.Addr as cfg says and returns what it measured. It stops
// at the first failure: an operation past its deadline, a reply that
// differs from what was sent, a connection closed early. The error then
// names the client, the operation and the first differing byte; the
// result holds what was measured until then.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	r := &run{cfg: cfg, stop: make(chan struct{}), clients: make([]*client, cfg.Clients)}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.ctx = ctx
	// Without a warm-up the measurement starts with the first client.
	start := time.Now()
	if cfg.Warmup == 0 {
		r.measuring.Store(true)
	}

	var wg sync.WaitGroup
	for i := range r.clients {
		cl := newClient(r, i)
		r.clients[i] = cl
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if cfg.Mode == Exchange {
				err = cl.exchanges()
			} else {
				err = cl.stream()
			}
			if err != nil {
				if perr := ended(parent); perr != nil {
					// The caller's context ended: a dial or read cut
					// short by its deadline reports an i/o timeout.
					err = fmt.Errorf("%w (%v)", perr, err)
				}
				r.fail(fmt.Errorf("client %d: %w", i, err))
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	// Warm-up, then the measured part.
	if cfg.Warmup > 0 {
		select {
		case <-time.After(cfg.Warmup):
		case <-r.stop:
		case <-allDone:
		case <-ctx.Done():
		}
	}
	var b0 int64
	if cfg.Warmup > 0 {
		start = time.Now()
		b0 = r.bytes.Load()
		r.measuring.Store(true)
	}
	var limit <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		limit = t.C
	}
	select {
	case <-limit:
	case <-r.stop:
	case <-allDone:
	case <-ctx.Done():
		r.fail(ctx.Err())
	}
	elapsed := time.Since(start)
	r.halt()
	bytes := r.bytes.Load() - b0
	exchanges := r.done.Load()
	r.measuring.Store(false)
	cancel() // unblocks dials
	<-allDone

	res := Result{Config: cfg, Exchanges: exchanges, Bytes: bytes, Elapsed: elapsed}
	var h hist
	for _, cl := range r.clients {
		h.merge(&cl.hist)
	}
	res.Samples = h.n
	res.P50, res.P90, res.P99, res.Max = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99), h.max
	if err := parent.Err(); err != nil {
		return res, err // whatever the clients saw, this is why
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return res, r.err
}

// run is the state the clients of one Run share.
type run struct {
	cfg       Config
	ctx       context.Context
	clients   []*client
	measuring atomic.Bool
	halted    atomic.Bool
	stopOnce  sync.Once
	stop      chan struct{} // closed by halt
	tickets   atomic.Int64  // measured exchanges started (Count)
	done      atomic.Int64  // measured exchanges completed
	bytes     atomic.Int64  // payload bytes verified, all along
	mu        sync.Mutex
	err       error // the first failure
}

// halt stops the clients: no new operation starts.
func (r *run) halt() {
	r.stopOnce.Do(func() { r.halted.Store(true); close(r.stop) })
}

// fail records the first failure and halts the run.
// ended is ctx.Err(), or DeadlineExceeded once ctx's deadline has passed:
// a dial or read given that deadline can return its timeout before the
// context's own timer has marked it done.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (r *run) fail(err error) {
	r.mu.Lock()
	if r.err == nil && !(r.halted.Load() && errors.Is(err, context.Canceled)) {
		r.err = err
	}
	r.mu.Unlock()
	r.halt()
}
