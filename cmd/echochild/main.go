// Command echochild is the child program of the forking reference server:
// the server starts one per connection, hands it the connection over a
// control socket, and the child serves it and exits. It is not run by hand.
//
// A child could be the server's own binary re-executed (what the server does
// when it has no echochild), but a Go binary that imports net links libc
// where cgo is enabled, and a dynamically linked process takes about a
// millisecond longer to start: the dynamic loader, and glibc's start-up.
// echochild imports no net, so it is a static binary however it is built.
// echoserver uses the echochild installed beside it:
//
//	go install github.com/echoconform/echoconform/cmd/...@latest
package main

import (
	"fmt"
	"os"

	"github.com/echoconform/echoconform/internal/forkchild"
)

func main() {
	v, ok := os.LookupEnv(forkchild.Env)
	if !ok {
		fmt.Fprintln(os.Stderr, "echochild: serves one connection for a forking echoserver (see echoserver -child); it is not run by hand")
		os.Exit(2)
	}
	os.Exit(forkchild.Run(v))
}
