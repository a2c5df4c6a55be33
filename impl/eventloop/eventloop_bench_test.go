package eventloop_test

import (
	"testing"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/impl/threading"
)

// The benchmarks drive each server with internal/load (every byte
// verified) beside the io.Copy baseline and the threading reference in the
// same run, so that the event loop's figures read as ratios to both
// (issue 12: stream MB/s and exchanges/s with 8 clients at least 0.8× the
// threading reference's). Compare with
//
//	go test -run '^$' -bench . -count 6 ./impl/eventloop > new.txt
//	benchstat -col /server new.txt

var pidPrefix = echo.MustParseTemplate("{pid}: ")

var threadingModel = impltest.Model{
	New: func(cfg echo.Config) impltest.Server { return threading.New(cfg) },
}

var benchServers = []impltest.BenchServer{
	{Name: "baseline", Start: impltest.StartBaseline},
	{Name: "threading", Start: start(threadingModel, echo.Config{Protocol: echo.Stream})},
	{Name: "eventloop", Start: start(model, echo.Config{Protocol: echo.Stream})},
	{Name: "eventloop-prefix", Prefix: pidPrefix, Start: start(model, echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})},
	{Name: "eventloop-oneshot", Protocol: echo.Oneshot, Prefix: pidPrefix, Start: start(model, echo.Config{Protocol: echo.Oneshot, Prefix: pidPrefix})},
}

func start(m impltest.Model, cfg echo.Config) func(b *testing.B) string {
	return func(b *testing.B) string { return impltest.Start(b, m, cfg).Addr }
}

// BenchmarkStream measures throughput (impltest.BenchStream).
func BenchmarkStream(b *testing.B) { impltest.BenchStream(b, benchServers) }

// BenchmarkExchange measures connections (impltest.BenchExchange).
func BenchmarkExchange(b *testing.B) { impltest.BenchExchange(b, benchServers) }
