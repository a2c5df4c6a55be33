// Command echoload drives a TCP echo server on this machine with N
// clients, verifies every byte that comes back, and reports MB/s,
// exchanges/s and latency percentiles.
//
//	echoload [flags] -addr 127.0.0.1:7007      a server that is already running
//	echoload [flags] -- COMMAND [ARG...]       start COMMAND ({port}, {addr} and $PORT
//	                                           name a free port), load it, stop it
//
// Exit status: 0 the load ran and every reply was right, 1 the server
// failed (a wrong byte, a deadline passed, a connection refused), 2 bad
// input or a server that could not be started.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/load"
)

const usageText = `usage:
  echoload [flags] -addr 127.0.0.1:7007    load a server that is already running (loopback only)
  echoload [flags] -- COMMAND [ARG...]     start COMMAND, load it, stop it; {port} and {addr}
                                           in an ARG become a free port on 127.0.0.1 and
                                           127.0.0.1:PORT, and $PORT is set

modes:
  -mode exchange   every operation is a connection: connect, send -bytes, half-close,
                   read the reply to EOF (exchanges/s, latency of an exchange)
  -mode stream     every client streams -bytes (0: until -duration ends) through one
                   connection while reading the echo (MB/s, latency of a write)

examples:
  echoload -addr 127.0.0.1:7007 -clients 8 -duration 5s
  echoload -addr 127.0.0.1:7007 -rate 200 -duration 5s     latency below saturation
  echoload -mode stream -clients 1 -bytes 268435456 -- echoserver -addr {addr}
  echoload -protocol oneshot -prefix '{pid}: ' -- python3 testdata/servers/cookbook.py fork {port}

flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	cfg     load.Config
	json    bool
	argv    []string
	ready   time.Duration
	grace   time.Duration
	verbose bool
}

// usageError is bad input: one line on stderr, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func parse(args []string, stdout io.Writer) (*options, error) {
	fs := flag.NewFlagSet("echoload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &options{}
	addr := fs.String("addr", "", "address of a running server, on loopback (host:port)")
	fs.IntVar(&o.cfg.Clients, "clients", 1, "concurrent clients")
	mode := fs.String("mode", "exchange", "load: exchange (a connection per message) or stream (one connection per client)")
	protocol := fs.String("protocol", "stream", "what the server speaks: stream (RFC 862) or oneshot (one message, one reply, close)")
	prefix := fs.String("prefix", "", "prefix template every reply begins with, e.g. '{pid}: '")
	fs.DurationVar(&o.cfg.Duration, "duration", 5*time.Second, "measured time (0: bounded by -count or -bytes alone)")
	fs.Int64Var(&o.cfg.Count, "count", 0, "exchange: stop after this many exchanges (0: no bound)")
	fs.Int64Var(&o.cfg.Bytes, "bytes", 0, "exchange: size of each message (0: 64); stream: bytes each client sends (0: until -duration)")
	fs.IntVar(&o.cfg.Chunk, "chunk", load.DefaultChunk, "stream: size of each write")
	fs.IntVar(&o.cfg.MaxMsg, "max-msg", echo.DefaultMaxMsg, "oneshot: the server's largest message")
	fs.BoolVar(&o.cfg.NoHalfClose, "no-half-close", false, "oneshot: wait for the reply without half-closing, as the canonical clients do")
	fs.DurationVar(&o.cfg.Warmup, "warmup", 0, "load before the measurement, not counted")
	fs.DurationVar(&o.cfg.Timeout, "timeout", load.DefaultTimeout, "deadline of every dial, read and write")
	fs.Float64Var(&o.cfg.Rate, "rate", 0, "exchange: pace the clients at this many exchanges/s in all (0: as fast as the server answers); an exchange the server kept waiting counts from when it was due")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	fs.DurationVar(&o.ready, "ready-timeout", 10*time.Second, "launch mode: how long the command may take to listen")
	fs.DurationVar(&o.grace, "grace", 5*time.Second, "launch mode: how long the command may take to exit after SIGTERM")
	fs.BoolVar(&o.verbose, "v", false, "launch mode: pass the command's output through")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	o.argv = fs.Args()
	var err error
	if o.cfg.Mode, err = load.ParseMode(*mode); err != nil {
		return nil, usageError{err.Error()}
	}
	if o.cfg.Protocol, err = echo.ParseProtocol(*protocol); err != nil {
		return nil, usageError{err.Error()}
	}
	if o.cfg.Prefix, err = echo.ParseTemplate(*prefix); err != nil {
		return nil, usageError{err.Error()}
	}
	switch {
	case *addr != "" && len(o.argv) > 0:
		return nil, usageError{"give -addr or a command after --, not both"}
	case *addr == "" && len(o.argv) == 0:
		return nil, usageError{"nothing to load: give -addr HOST:PORT or -- COMMAND {port} (echoload -h explains)"}
	case o.cfg.Clients <= 0:
		return nil, usageError{"-clients must be at least 1"}
	case o.cfg.Chunk <= 0 || o.cfg.MaxMsg <= 0 || o.cfg.Timeout <= 0:
		return nil, usageError{"-chunk, -max-msg and -timeout must be positive"}
	}
	o.cfg.Addr = *addr
	if o.cfg.Addr == "" {
		o.cfg.Addr = "127.0.0.1:1" // checked again once the command listens
	}
	if err := o.cfg.Validate(); err != nil {
		return nil, usageError{err.Error()}
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "echoload: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if len(o.argv) > 0 {
		out := io.Discard
		if o.verbose {
			out = stderr
		}
		p, err := load.Launch(ctx, o.argv, out, o.ready)
		if err != nil {
			fmt.Fprintf(stderr, "echoload: %v\n", err)
			return 2
		}
		defer func() {
			if err := p.Stop(o.grace); err != nil && o.verbose {
				fmt.Fprintf(stderr, "echoload: the server ended with %v\n", err)
			}
		}()
		o.cfg.Addr = p.Addr
	}
	res, err := load.Run(ctx, o.cfg)
	switch {
	case o.json:
		report(stdout, res, err)
	case err != nil:
		fmt.Fprintf(stdout, "echoload: %s: until the failure: %v\n", o.cfg.Addr, res)
	default:
		fmt.Fprintf(stdout, "echoload: %s: %v; every byte verified\n", o.cfg.Addr, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "echoload: FAIL: %v\n", err)
		return 1
	}
	return 0
}

// jsonResult is the -json output: one object per run.
type jsonResult struct {
	Addr          string  `json:"addr"`
	Mode          string  `json:"mode"`
	Protocol      string  `json:"protocol"`
	Prefix        string  `json:"prefix"`
	Clients       int     `json:"clients"`
	Bytes         int64   `json:"bytes"`
	Exchanges     int64   `json:"exchanges"`
	BytesVerified int64   `json:"bytes_verified"`
	ElapsedSec    float64 `json:"elapsed_s"`
	MBPerSec      float64 `json:"mb_per_s"`
	ExchangesSec  float64 `json:"exchanges_per_s"`
	P50us         float64 `json:"p50_us"`
	P90us         float64 `json:"p90_us"`
	P99us         float64 `json:"p99_us"`
	Maxus         float64 `json:"max_us"`
	Error         string  `json:"error,omitempty"`
}

func report(w io.Writer, r load.Result, err error) {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	j := jsonResult{
		Addr: r.Config.Addr, Mode: r.Config.Mode.String(), Protocol: r.Config.Protocol.String(),
		Prefix: r.Config.Prefix.String(), Clients: r.Config.Clients, Bytes: r.Config.Bytes,
		Exchanges: r.Exchanges, BytesVerified: r.Bytes, ElapsedSec: r.Elapsed.Seconds(),
		MBPerSec: r.MBPerSec(), ExchangesSec: r.PerSec(),
		P50us: us(r.P50), P90us: us(r.P90), P99us: us(r.P99), Maxus: us(r.Max),
	}
	if err != nil {
		j.Error = err.Error()
	}
	b, _ := json.Marshal(j)
	fmt.Fprintf(w, "%s\n", b)
}
