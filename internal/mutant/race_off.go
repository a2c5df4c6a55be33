//go:build !race

package mutant

// RaceEnabled reports whether the binary, and so every mutant it runs, was
// built with the race detector (and is several times slower).
const RaceEnabled = false
