package impltest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/echoconform/echoconform/internal/load"
)

// StartBaseline serves the minimal Go echo, a goroutine per connection
// running io.Copy, until the benchmark ends: the baseline every reference
// is compared with in the same run.
func StartBaseline(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := io.Copy(c, c); err == nil {
					_ = c.(*net.TCPConn).CloseWrite()
				}
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
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
