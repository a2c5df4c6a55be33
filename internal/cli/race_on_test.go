//go:build race

package cli

// raceTimeScale stretches the harness's deadlines for race-instrumented
// servers: the references run in this binary, and their fork-model
// children re-execute it, race runtime and all, while make test runs
// other race-instrumented packages beside it (a 1-byte echo of the
// forking reference once took over 4 s there, under a load average of 12).
const raceTimeScale = "4"
