package threading_test

import (
	"fmt"
	"testing"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/internal/load"
)

// The benchmarks drive each server with internal/load (every byte
// verified) and compare it with a baseline in the same run: the minimal Go
// echo, a goroutine per connection running io.Copy. Compare servers with
//
//	go test -run '^$' -bench . -count 6 ./impl/threading > new.txt
//	benchstat -col /server new.txt

// benchServer is a server under benchmark: it starts on a loopback port
// and stops at the benchmark's cleanup.
type benchServer struct {
	name   string
	prefix echo.Template
	start  func(b *testing.B) string
}

var pidPrefix = echo.MustParseTemplate("{pid}: ")

var benchServers = []benchServer{
	{name: "baseline", start: impltest.StartBaseline},
	{name: "threading", start: startThreading(echo.Config{Protocol: echo.Stream})},
	{name: "threading-prefix", prefix: pidPrefix, start: startThreading(echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})},
}

func startThreading(cfg echo.Config) func(b *testing.B) string {
	return func(b *testing.B) string { return impltest.Start(b, model, cfg).Addr }
}

// BenchmarkStream measures throughput: every client streams through one
// connection while it reads the echo back; an operation is 1 MiB echoed.
func BenchmarkStream(b *testing.B) {
	const op = 1 << 20
	for _, s := range benchServers {
		for _, conns := range []int{1, 8} {
			b.Run(fmt.Sprintf("server=%s/conns=%d", s.name, conns), func(b *testing.B) {
				addr := s.start(b)
				b.SetBytes(op)
				per := (int64(b.N)*op + int64(conns) - 1) / int64(conns)
				impltest.RunLoad(b, load.Config{Addr: addr, Mode: load.Stream, Clients: conns, Prefix: s.prefix, Bytes: per, Chunk: 256 << 10})
			})
		}
	}
}

// BenchmarkExchange measures connections: an operation is one exchange
// (connect, send 64 bytes, half-close, read the echo to EOF); the
// latency is that of an exchange.
func BenchmarkExchange(b *testing.B) {
	for _, s := range benchServers {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("server=%s/clients=%d", s.name, clients), func(b *testing.B) {
				addr := s.start(b)
				impltest.RunLoad(b, load.Config{Addr: addr, Mode: load.Exchange, Clients: clients, Prefix: s.prefix, Bytes: 64, Count: int64(b.N)})
			})
		}
	}
}
