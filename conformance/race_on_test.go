//go:build race

package conformance_test

// timeScale stretches the harness's deadlines for race-instrumented code.
const timeScale = 2
