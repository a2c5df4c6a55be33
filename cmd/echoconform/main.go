// Command echoconform checks a TCP echo server against SPEC.md.
//
//	echoconform [flags] -- COMMAND [ARG...]   launch mode: start COMMAND for each check
//	echoconform [flags] -addr HOST:PORT       attach mode: a server already running
//	echoconform [flags]                       check the built-in reference servers
//
// Exit status: 0 when every MUST holds (and with -strict every SHOULD), 1
// when a requirement failed, 2 when the harness could not run. Run
// echoconform -h for every flag.
package main

import (
	"os"

	"github.com/echoconform/echoconform/conformance"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/internal/cli"
)

func main() {
	forking.Init()     // the forking reference re-executes this binary
	conformance.Init() // and so does the supervisor of a launched server
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
