//go:build !race

package cli

// raceTimeScale stretches the harness's deadlines for race-instrumented
// servers; without -race, none.
const raceTimeScale = "1"
