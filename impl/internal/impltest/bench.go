package impltest

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/load"
	"github.com/echoconform/echoconform/internal/testserver"
)

// StartBaseline serves the minimal Go echo, a goroutine per connection
// running io.Copy, until the benchmark ends: the baseline every reference
// is compared with in the same run.
func StartBaseline(b *testing.B) string {
	return testserver.Handle(b, func(c *net.TCPConn) {
		if _, err := io.Copy(c, c); err == nil {
			_ = c.CloseWrite()
		}
	})
}

// RunLoad runs cfg against a server; for exchanges it reports the latency
// percentiles. (A stream's latency is mostly the time its bytes queue in
// socket buffers: not reported.)
func RunLoad(b *testing.B, cfg load.Config) load.Result {
	b.Helper()
	cfg.Timeout = 10 * time.Second
	b.ResetTimer()
	res, err := load.Run(context.Background(), cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if cfg.Mode == load.Exchange {
		b.ReportMetric(float64(res.P50.Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(res.P99.Nanoseconds()), "p99-ns")
	}
	return res
}

// BenchServer is a server under benchmark: it starts on a loopback port
// and stops at the benchmark's cleanup.
type BenchServer struct {
	Name     string
	Protocol echo.Protocol
	Prefix   echo.Template
	Start    func(b *testing.B) string
}

// BenchStream measures throughput of the stream servers: every client
// streams through one connection while it reads the echo back; an
// operation is 1 MiB echoed.
func BenchStream(b *testing.B, servers []BenchServer) {
	const op = 1 << 20
	for _, s := range servers {
		if s.Protocol != echo.Stream {
			continue
		}
		for _, conns := range []int{1, 8} {
			b.Run(fmt.Sprintf("server=%s/conns=%d", s.Name, conns), func(b *testing.B) {
				addr := s.Start(b)
				b.SetBytes(op)
				per := (int64(b.N)*op + int64(conns) - 1) / int64(conns)
				RunLoad(b, load.Config{Addr: addr, Mode: load.Stream, Clients: conns, Prefix: s.Prefix, Bytes: per, Chunk: 256 << 10})
			})
		}
	}
}

// BenchExchange measures connections: an operation is one exchange
// (connect, send 64 bytes, half-close, read the reply to EOF); the
// latency is that of an exchange.
func BenchExchange(b *testing.B, servers []BenchServer) {
	for _, s := range servers {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("server=%s/clients=%d", s.Name, clients), func(b *testing.B) {
				addr := s.Start(b)
				RunLoad(b, load.Config{Addr: addr, Mode: load.Exchange, Protocol: s.Protocol, Clients: clients, Prefix: s.Prefix, Bytes: 64, Count: int64(b.N)})
			})
		}
	}
}
