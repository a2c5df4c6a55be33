// Command echomutant runs one server of the mutant zoo (internal/mutant):
// a correct server or one with a single known fault, to see what
// echoconform says of it.
//
//	echoconform -model thread -prefix '{pid}: ' -- echomutant -echoconform.mutant=drop-byte-4096 -model=thread -protocol=stream '-prefix={pid}: ' '-addr={addr}'
//
// The zoo's tests run it too: a fork-model mutant starts this binary for
// every connection, and a small static program starts several times faster
// than the test binary would.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/echoconform/echoconform/internal/mutant"
)

func main() {
	mutant.Init() // runs the mutant named by the arguments, and exits
	var names []string
	for _, m := range mutant.All() {
		names = append(names, m.Name)
	}
	fmt.Fprintf(os.Stderr, "usage: echomutant -echoconform.mutant=NAME [-model=thread|fork] [-protocol=stream|oneshot] [-prefix=TEMPLATE] [-max-msg=N] -addr=HOST:PORT|unix:PATH\nmutants: %s\n", strings.Join(names, " "))
	os.Exit(2)
}
