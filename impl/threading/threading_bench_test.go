package threading_test

import (
	"testing"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/impltest"
)

// The benchmarks drive each server with internal/load (every byte
// verified) and compare it with a baseline in the same run: the minimal Go
// echo, a goroutine per connection running io.Copy. Compare servers with
//
//	go test -run '^$' -bench . -count 6 ./impl/threading > new.txt
//	benchstat -col /server new.txt

var pidPrefix = echo.MustParseTemplate("{pid}: ")

var benchServers = []impltest.BenchServer{
	{Name: "baseline", Start: impltest.StartBaseline},
	{Name: "threading", Start: startThreading(echo.Config{Protocol: echo.Stream})},
	{Name: "threading-prefix", Prefix: pidPrefix, Start: startThreading(echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})},
}

func startThreading(cfg echo.Config) func(b *testing.B) string {
	return func(b *testing.B) string { return impltest.Start(b, model, cfg).Addr }
}

// BenchmarkStream measures throughput (impltest.BenchStream).
func BenchmarkStream(b *testing.B) { impltest.BenchStream(b, benchServers) }

// BenchmarkExchange measures connections (impltest.BenchExchange).
func BenchmarkExchange(b *testing.B) { impltest.BenchExchange(b, benchServers) }
