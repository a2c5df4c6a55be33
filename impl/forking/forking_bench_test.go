package forking_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/internal/load"
	"github.com/echoconform/echoconform/internal/proc"
)

// The benchmarks drive each server with internal/load (every byte
// verified) and compare it with a baseline in the same run: the minimal Go
// echo, a goroutine per connection running io.Copy. Compare servers with
//
//	go test -run '^$' -bench . -count 6 ./impl/forking > new.txt
//	benchstat -col /server new.txt
//
// The children are this test binary, which links testify, procfs and
// more and libc, except for the servers named echochild, whose children
// run cmd/echochild as echoserver's do (see BenchmarkSpawn and `make
// bench`).

var pidPrefix = echo.MustParseTemplate("{pid}: ")

var benchServers = []impltest.BenchServer{
	{Name: "baseline", Start: impltest.StartBaseline},
	{Name: "forking", Start: startForking(echo.Config{Protocol: echo.Stream})},
	{Name: "forking-prefix", Prefix: pidPrefix, Start: startForking(echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})},
	{Name: "forking-oneshot", Protocol: echo.Oneshot, Prefix: pidPrefix, Start: startForking(echo.Config{Protocol: echo.Oneshot, Prefix: pidPrefix})},
	{Name: "forking-oneshot-echochild", Protocol: echo.Oneshot, Prefix: pidPrefix, Start: func(b *testing.B) string {
		return impltest.Start(b, echochildModel(impltest.BuildEchochild(b)), echo.Config{Protocol: echo.Oneshot, Prefix: pidPrefix}).Addr
	}},
}

func startForking(cfg echo.Config) func(b *testing.B) string {
	return func(b *testing.B) string { return impltest.Start(b, model, cfg).Addr }
}

// BenchmarkStream measures throughput (impltest.BenchStream).
func BenchmarkStream(b *testing.B) { impltest.BenchStream(b, benchServers) }

// BenchmarkExchange measures connections (impltest.BenchExchange): each
// exchange is served by a child process of its own.
func BenchmarkExchange(b *testing.B) { impltest.BenchExchange(b, benchServers) }

// BenchmarkFootprint10k tests that the server process stays flat while its
// children serve 10,000 connections (an operation), and reports its RSS
// and descriptors (read from /proc, at rest, before and after) and the RSS
// of one child while it serves. The children run cmd/echochild, as
// echoserver's do.
func BenchmarkFootprint10k(b *testing.B) {
	const warm, n = 1000, 10000
	r := impltest.Start(b, echochildModel(impltest.BuildEchochild(b)), echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})
	exchanges := func(count int) {
		_, err := load.Run(context.Background(), load.Config{Addr: r.Addr, Clients: 8, Prefix: pidPrefix, Count: int64(count), Timeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
	}
	// At rest: the spares ended, descriptors settled, the heap collected.
	atRest := func() proc.Info {
		impltest.Eventually(b, 2*forking.DefaultSpareTimeout+impltest.D, func() (bool, string) {
			kids := impltest.Children(b)
			return len(kids) == 0, fmt.Sprintf("children %v remain", kids)
		})
		fds := impltest.SettledFDs(b)
		runtime.GC()
		info, err := proc.Read(os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		info.FDs = fds
		return info
	}
	exchanges(warm) // threads, pools and the heap reach their working size
	before := atRest()
	b.ResetTimer()
	for range b.N {
		exchanges(n)
	}
	b.StopTimer()
	after := atRest()

	// One child, serving.
	c := r.Dial(b)
	v := impltest.ExpectReply(b, c, pidPrefix, []byte("how big are you?"))
	child, err := proc.Read(v.PID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after.RSS)/1024, "parent-rss-KiB")
	b.ReportMetric(float64(after.RSS-before.RSS)/1024, "parent-rss-growth-KiB")
	b.ReportMetric(float64(after.FDs), "parent-fds")
	b.ReportMetric(float64(after.FDs-before.FDs), "parent-fd-growth")
	b.ReportMetric(float64(after.Threads-before.Threads), "parent-thread-growth")
	b.ReportMetric(float64(child.RSS)/1024, "child-rss-KiB")
	if after.FDs != before.FDs {
		b.Errorf("descriptors of the server process: %d at rest before %d connections, %d after", before.FDs, b.N*n, after.FDs)
	}
	// The heap may settle a little higher; a leak per connection would be
	// megabytes.
	if growth := after.RSS - before.RSS; growth > 8<<20 {
		b.Errorf("RSS of the server process grew by %d KiB over %d connections", growth>>10, b.N*n)
	}
}
