package fuzz

import (
	"testing"

	"github.com/echoconform/echoconform/echo"
)

// brokenServer returns the mutant of the zoo named by
// ECHOCONFORM_FUZZ_SERVER, in process.
func brokenServer(tb testing.TB, cfg echo.Config) echo.Server {
	tb.Fatalf("ECHOCONFORM_FUZZ_SERVER: mutants arrive with the mutant zoo")
	return nil
}
