// Command echosupervise is the supervisor of a server that echoconform's
// harness launches, and nothing else: a small program, so that the process
// started with every server starts fast. The harness uses it when it lies
// beside the harness's executable (go install ./cmd/... puts it there) or
// when $ECHOCONFORM_SUPERVISOR names it; otherwise the harness runs itself
// again as the supervisor.
package main

import (
	"fmt"
	"os"

	"github.com/echoconform/echoconform/internal/supervise"
)

func main() {
	if os.Getenv(supervise.Env) == "" {
		fmt.Fprintln(os.Stderr, "echosupervise: only echoconform's harness starts it, to supervise a server")
		os.Exit(2)
	}
	os.Exit(supervise.Main(os.Args[1:]))
}
