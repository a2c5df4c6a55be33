package conformance_test

import (
	"context"
	"slices"
	"testing"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/threading"
)

// BenchmarkSuite measures the wall time of a full default run against each
// reference in this process (an operation is one run), and reports where
// the time goes: the milliseconds of every requirement (ID-ms). Slow:
//
//	go test -run '^$' -bench Suite -benchtime 1x ./conformance
func BenchmarkSuite(b *testing.B) {
	prefix := echo.MustParseTemplate("{pid}/{ppid}: ")
	for _, model := range []conformance.Model{conformance.ModelThread, conformance.ModelFork} {
		for _, protocol := range []echo.Protocol{echo.Stream, echo.Oneshot} {
			b.Run("model="+string(model)+"/protocol="+protocol.String(), func(b *testing.B) {
				cfg := echo.Config{Protocol: protocol, Prefix: prefix}
				newServer := func() echo.Server { return threading.New(cfg) }
				if model == conformance.ModelFork {
					newServer = func() echo.Server { return forking.New(cfg) }
				}
				target := conformance.InProcess(string(model), newServer)
				perID := map[string]float64{}
				for range b.N {
					rep, err := conformance.Check(context.Background(), target, declare(protocol, prefix, model)...)
					if err != nil {
						b.Fatal(err)
					}
					if failed := rep.Failed(false); len(failed) > 0 {
						b.Fatalf("%s failed: %s", failed[0].ID, failed[0].Message)
					}
					for _, res := range rep.Results {
						perID[res.ID] += float64(res.Duration.Milliseconds())
					}
				}
				ids := make([]string, 0, len(perID))
				for id := range perID {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				for _, id := range ids {
					b.ReportMetric(perID[id]/float64(b.N), id+"-ms")
				}
			})
		}
	}
}
