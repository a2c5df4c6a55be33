//go:build race

package cli

// raceTimeScale stretches the harness's deadlines for race-instrumented
// servers (the references run in this binary), as conformance's own tests do.
const raceTimeScale = "2"
